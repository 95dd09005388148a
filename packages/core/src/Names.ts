/**
 * Names and identifiers of the Orchestra vocabulary: scores, players, jobs,
 * tasks and attempts.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** A name usable for a score or a player: no `/`, no whitespace, no control characters, 1–128 characters, not `.` or `..`. */
const nameFilter = <S extends Schema.Schema.Any>(self: S, what: string) =>
  self.pipe(
    Schema.filter((s: unknown) => {
      if (typeof s !== "string") return `${what} must be a string`
      if (s.length === 0) return `${what} must not be empty`
      if (s.length > 128) return `${what} must be at most 128 characters (got ${s.length})`
      if (s.includes("/")) return `${what} must not contain "/" (got ${JSON.stringify(s)})`
      // eslint-disable-next-line no-control-regex
      if (/[\s\u0000-\u001f\u007f]/.test(s)) return `${what} must not contain whitespace or control characters (got ${JSON.stringify(s)})`
      if (s === "." || s === "..") return `${what} must not be "." or ".."`
      return true
    })
  )

/**
 * The name of a score: the file name of its executable in a player's score
 * directory.
 */
export const ScoreName = nameFilter(Schema.String, "score name").pipe(Schema.brand("ScoreName"))
export type ScoreName = typeof ScoreName.Type

/** The name of a player; it must match the player's certificate. */
export const PlayerName = nameFilter(Schema.String, "player name").pipe(Schema.brand("PlayerName"))
export type PlayerName = typeof PlayerName.Type

/** A job id: a positive integer, allocated by the store and never reused. */
export const JobId = Schema.Int.pipe(Schema.positive(), Schema.brand("JobId"))
export type JobId = typeof JobId.Type

/**
 * The key of a task inside its job, chosen by the job's policy (for example
 * `"0"` for one-of, the player's name for all-of).
 */
export const TaskKey = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256), Schema.brand("TaskKey"))
export type TaskKey = typeof TaskKey.Type

/** The attempt number of a task: 1 for the first dispatch, +1 for each re-dispatch. */
export const Attempt = Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))
export type Attempt = typeof Attempt.Type

/** Identifies one attempt of one task of one job. */
export const TaskRef = Schema.Struct({
  job: JobId,
  key: TaskKey,
  attempt: Attempt
})
export type TaskRef = typeof TaskRef.Type

/** The string form of a task reference, `<job>/<key>/<attempt>`, as seen by scores in `ORC_TASK_ID`. */
export const taskRefString = (ref: TaskRef): string => `${ref.job}/${ref.key}/${ref.attempt}`

const decodeScore = Schema.decodeUnknownSync(ScoreName)
const decodePlayer = Schema.decodeUnknownSync(PlayerName)
const decodeJobId = Schema.decodeUnknownSync(JobId)
const decodeTaskKey = Schema.decodeUnknownSync(TaskKey)

/** Make a score name, throwing on an invalid one (for constants and tests). */
export const scoreName = (s: string): ScoreName => decodeScore(s)
/** Make a player name, throwing on an invalid one (for constants and tests). */
export const playerName = (s: string): PlayerName => decodePlayer(s)
/** Make a job id, throwing on an invalid one (for constants and tests). */
export const jobId = (n: number): JobId => decodeJobId(n)
/** Make a task key, throwing on an invalid one (for constants and tests). */
export const taskKey = (s: string): TaskKey => decodeTaskKey(s)
