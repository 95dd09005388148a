/**
 * Fast checks of the store's inputs. Each write is checked against the core
 * schemas before it is applied; these checks accept only values the
 * schemas accept (the same rules, names remembered once they passed), so
 * the common case skips the schema machinery, and anything they do not
 * accept goes through the schema, which gives the error.
 *
 * @since 0.1.0
 */
import { JobState, Json, Names, Outcome } from "@orchestra/core"
import { Schema } from "effect"

/** `Schema.is` of a string schema, remembering strings that passed (the same few player names come back all the time). */
const memoIs = (schema: Schema.Schema<string, string>, max = 4096): (u: unknown) => boolean => {
  const is = Schema.is(schema)
  const ok = new Set<string>()
  return (u) => {
    if (typeof u !== "string") return false
    if (ok.has(u)) return true
    if (!is(u)) return false
    if (ok.size >= max) ok.clear()
    ok.add(u)
    return true
  }
}

export const isPlayerName: (u: unknown) => boolean = memoIs(Names.PlayerName as unknown as Schema.Schema<string, string>)

const isJobId = (u: unknown): boolean => typeof u === "number" && Number.isSafeInteger(u) && u > 0

/** A `TaskRef`: positive safe-integer job, key of 1–256 characters, attempt a safe integer ≥ 1. */
export const isTaskRef = (u: unknown): boolean => {
  if (typeof u !== "object" || u === null) return false
  const r = u as { readonly job?: unknown; readonly key?: unknown; readonly attempt?: unknown }
  return isJobId(r.job) && typeof r.key === "string" && r.key.length >= 1 && r.key.length <= 256 &&
    typeof r.attempt === "number" && Number.isSafeInteger(r.attempt) && r.attempt >= 1
}

const outcomes: ReadonlySet<unknown> = new Set(Outcome.all)
export const isOutcome = (u: unknown): boolean => outcomes.has(u)

const finished: ReadonlySet<unknown> = new Set(JobState.FinishedJobState.literals)
export const isFinishedState = (u: unknown): boolean => finished.has(u)

export const isJobIdValue = isJobId

export const isOptionalNumber = (u: unknown): boolean => u === undefined || typeof u === "number"
export const isOptionalString = (u: unknown): boolean => u === undefined || typeof u === "string"

export const isPlayerNames = (u: unknown): boolean => {
  if (!Array.isArray(u)) return false
  for (const p of u) if (!isPlayerName(p)) return false
  return true
}

const isPlainRecord = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const LABEL_KEY = /^[A-Za-z0-9_.\-/]{1,63}$/

/** `Labels`: string values of at most 256 characters under keys of 1–63 letters, digits, `_ . - /`. */
export const isLabels = (u: unknown): boolean => {
  if (!isPlainRecord(u)) return false
  for (const k in u) {
    const v = u[k]
    if (typeof v !== "string" || v.length > 256 || !LABEL_KEY.test(k)) return false
  }
  return true
}

/** The labels of each target, by player. */
export const isTargetLabels = (u: unknown): boolean => {
  if (!isPlainRecord(u)) return false
  for (const k in u) if (!isLabels(u[k])) return false
  return true
}

export const isJsonObject = Json.isJsonObject
