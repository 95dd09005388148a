/**
 * The environment a score runs with. It is built from scratch — nothing of
 * the player's own environment leaks through — from the manifest's `path`
 * and `variables`, the parameters (`ORC_<key>`, for the `env` and `pipe`
 * interfaces) and the fixed task variables every interface gets.
 */
import type { Json } from "@orchestra/core"

/** The `PATH` a score gets when its manifest names none. */
export const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

/** Variables every score gets, whatever its interface; parameters may not take these names. */
export const RESERVED = ["TASK_ID", "ATTEMPT", "JOB_ID", "SCORE", "PLAYER", "DEADLINE"] as const

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** A parameter value as an environment variable: strings as they are, other values as JSON. */
export const envValue = (value: Json.Json): string =>
  typeof value === "string" ? value : value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value)

/**
 * Why these parameters cannot be passed as environment variables (empty when
 * they can): names must be `[A-Za-z_][A-Za-z0-9_]*` and not reserved, values
 * must not contain NUL.
 */
export const paramViolations = (params: Json.JsonObject): Array<string> => {
  const out: Array<string> = []
  for (const [key, value] of Object.entries(params)) {
    if (!ENV_NAME.test(key)) {
      out.push(`params.${key}: name cannot be an environment variable (ORC_${key}); use letters, digits and _`)
    } else if ((RESERVED as ReadonlyArray<string>).includes(key)) {
      out.push(`params.${key}: name is reserved (ORC_${key} is set by the player)`)
    } else if (envValue(value).includes("\0")) {
      out.push(`params.${key}: value contains a NUL character`)
    }
  }
  return out
}

export interface TaskVariables {
  readonly taskId: string
  readonly attempt: number
  readonly jobId: number
  readonly score: string
  readonly player: string
  readonly deadline?: number | undefined
}

/** The complete environment of one task. */
export const build = (options: {
  readonly path: string | undefined
  readonly variables: Readonly<Record<string, string>>
  /** Parameters passed as `ORC_<key>`, or undefined for the `json` interface. */
  readonly params: Json.JsonObject | undefined
  readonly task: TaskVariables
}): Record<string, string> => {
  const env: Record<string, string> = { PATH: options.path ?? DEFAULT_PATH }
  for (const [k, v] of Object.entries(options.variables)) env[k] = v
  if (options.params !== undefined) {
    for (const [k, v] of Object.entries(options.params)) env[`ORC_${k}`] = envValue(v)
  }
  env.ORC_TASK_ID = options.task.taskId
  env.ORC_ATTEMPT = String(options.task.attempt)
  env.ORC_JOB_ID = String(options.task.jobId)
  env.ORC_SCORE = options.task.score
  env.ORC_PLAYER = options.task.player
  if (options.task.deadline !== undefined) env.ORC_DEADLINE = String(options.task.deadline)
  return env
}

/** The variables that mark the processes of one task, for finding leftovers after a crash. */
export const marker = (taskId: string, player: string): ReadonlyArray<string> => [
  `ORC_TASK_ID=${taskId}`,
  `ORC_PLAYER=${player}`
]
