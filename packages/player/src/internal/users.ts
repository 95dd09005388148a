/**
 * Looking up the user a score asks to run as (`environment.user`), from
 * /etc/passwd: Node has no getpwnam. A numeric user is taken as a uid.
 */
import * as fs from "node:fs"

export interface UserIds {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** Parse passwd text and find `user` (a name, or a numeric uid). */
export const lookupIn = (passwd: string, user: string): UserIds | undefined => {
  const numeric = /^\d+$/.test(user) ? Number(user) : undefined
  for (const line of passwd.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue
    const f = line.split(":")
    if (f.length < 4) continue
    const uid = Number(f[2])
    const gid = Number(f[3])
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue
    if (f[0] === user || (numeric !== undefined && uid === numeric)) return { name: f[0]!, uid, gid }
  }
  return numeric === undefined ? undefined : { name: user, uid: numeric, gid: numeric }
}

/** Find `user` in /etc/passwd. */
export const lookup = (user: string): UserIds | undefined => {
  let text = ""
  try {
    text = fs.readFileSync("/etc/passwd", "utf8")
  } catch {
    // no passwd file: only numeric users resolve
  }
  return lookupIn(text, user)
}

/** The effective uid of this process (-1 where there is none). */
export const currentUid = (): number => (typeof process.getuid === "function" ? process.getuid() : -1)
