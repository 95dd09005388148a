/**
 * Audience commands over the conductor's Unix socket: `submit`, `status`,
 * `wait`.
 *
 * @since 0.1.0
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { UnixSocket } from "@orchestra/client"
import type { Json } from "@orchestra/core"
import { Units } from "@orchestra/manifest"
import { Either } from "effect"
import { Config, Console, Duration, Effect, Option } from "effect"
import * as Exit from "./Exit.js"
import * as Output from "./Output.js"

export const socketOption = Options.text("socket").pipe(
  Options.withDescription("Path of the conductor's audience socket (default: $ORCHESTRA_SOCKET, else /run/orchestra/conductor.sock)"),
  Options.withFallbackConfig(Config.string("ORCHESTRA_SOCKET")),
  Options.withDefault("/run/orchestra/conductor.sock")
)

const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))

const clientFailure = (e: UnixSocket.ClientError) =>
  new Exit.ExitWith({ code: Exit.codes.unavailable, message: e.reason === "refused" ? `refused: ${e.message}` : e.message })

const printStatus = (id: number, s: UnixSocket.JobStatus, json: boolean) =>
  json
    ? Console.log(JSON.stringify({ id, ...s }))
    : Console.log(
      [
        `job ${id}: ${s.status}`,
        ...(Object.keys(s.players).length === 0
          ? ["  (no player has reported yet)"]
          : [
            Output.table(
              ["  player", "outcome", "response"],
              Object.entries(s.players).map(([p, r]) => [`  ${p}`, r.status, Output.response(r.response)])
            )
          ])
      ].join("\n")
    )

const waitFor = (socket: string, id: number, timeout: Option.Option<Duration.Duration>, json: boolean) =>
  UnixSocket.wait(socket, id, {
    timeout: Option.getOrElse(timeout, () => Duration.infinity),
    onProgress: (s) =>
      json
        ? Effect.void
        : Console.error(
          `job ${id}: ${s.status}  ${Object.entries(s.players).map(([p, r]) => `${p}:${r.status}`).join(" ")}`.trimEnd()
        )
  }).pipe(
    Effect.catchTag("ClientError", (e) =>
      e.reason === "timeout"
        ? Effect.fail(new Exit.ExitWith({ code: Exit.codes.pending, message: e.message }))
        : Effect.fail(clientFailure(e))
    ),
    Effect.tap((s) => printStatus(id, s, json)),
    Effect.flatMap((s) => {
      const code = Exit.ofJobState(s.status)
      return code === 0 ? Effect.void : Effect.fail(new Exit.ExitWith({ code }))
    })
  )

const parseParam = (kv: string): Effect.Effect<readonly [string, string], Exit.ExitWith> => {
  const i = kv.indexOf("=")
  return i <= 0
    ? Effect.fail(new Exit.ExitWith({ code: Exit.codes.usage, message: `--param ${JSON.stringify(kv)}: expected key=value` }))
    : Effect.succeed([kv.slice(0, i), kv.slice(i + 1)] as const)
}

const parseJsonObject = (flag: string, text: string): Effect.Effect<Json.JsonObject, Exit.ExitWith> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) => new Exit.ExitWith({ code: Exit.codes.usage, message: `${flag}: not JSON: ${e instanceof Error ? e.message : String(e)}` })
  }).pipe(
    Effect.filterOrFail(
      (v): v is Json.JsonObject => typeof v === "object" && v !== null && !Array.isArray(v),
      () => new Exit.ExitWith({ code: Exit.codes.usage, message: `${flag}: expected a JSON object` })
    )
  )

const timeoutOption = Options.text("timeout").pipe(
  Options.withDescription("Give up waiting after this long (e.g. 30s, 5m); exit 4 if still pending"),
  Options.mapEffect((s) => {
    const ms = Units.parseDuration(s)
    return Either.isLeft(ms)
      ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--timeout ${s}: ${ms.left}`)))
      : Effect.succeed(Duration.millis(ms.right))
  }),
  Options.optional
)

export const submit = Command.make(
  "submit",
  {
    score: Args.text({ name: "score" }).pipe(Args.withDescription("The score to run")),
    players: Options.text("player").pipe(
      Options.withAlias("p"),
      Options.withDescription("A target player (repeat, or separate with commas)"),
      Options.repeated
    ),
    scope: Options.choice("scope", ["one", "all"]).pipe(
      Options.withDescription("one: any one of the players runs it (one-of); all: every player runs it (all-of)"),
      Options.optional
    ),
    policy: Options.text("policy").pipe(Options.withDescription("A policy by name, instead of --scope"), Options.optional),
    options: Options.text("options").pipe(Options.withDescription("The policy's options, as a JSON object"), Options.optional),
    param: Options.text("param").pipe(Options.withDescription("A parameter key=value (repeatable; values are strings)"), Options.repeated),
    params: Options.text("params").pipe(Options.withDescription("Parameters as a JSON object (typed values)"), Options.optional),
    wait: Options.boolean("wait").pipe(Options.withDescription("Wait for the job, show progress, and exit with its state")),
    timeout: timeoutOption,
    socket: socketOption,
    json: jsonOption
  },
  (a) =>
    Effect.gen(function*() {
      const players = a.players.flatMap((p) => p.split(",")).map((p) => p.trim()).filter((p) => p.length > 0)
      const kv = yield* Effect.forEach(a.param, parseParam)
      const fromJson = Option.isSome(a.params) ? yield* parseJsonObject("--params", a.params.value) : {}
      const options = Option.isSome(a.options) ? yield* parseJsonObject("--options", a.options.value) : undefined
      if (Option.isNone(a.scope) && Option.isNone(a.policy)) {
        return yield* new Exit.ExitWith({ code: Exit.codes.usage, message: "give --scope one|all or --policy NAME" })
      }
      const id = yield* UnixSocket.queue(a.socket, {
        score: a.score,
        players,
        ...(Option.isSome(a.scope) ? { scope: a.scope.value } : {}),
        ...(Option.isSome(a.policy) ? { policy: a.policy.value } : {}),
        ...(options !== undefined ? { options } : {}),
        params: { ...fromJson, ...Object.fromEntries(kv) }
      }).pipe(Effect.mapError(clientFailure))
      if (!a.wait) {
        yield* a.json ? Console.log(JSON.stringify({ id })) : Console.log(`job ${id} queued`)
        return
      }
      if (!a.json) yield* Console.error(`job ${id} queued; waiting`)
      yield* waitFor(a.socket, id, a.timeout, a.json)
    })
).pipe(
  Command.withDescription(
    "Queue a job. Example: orchestra submit disk-usage -p web1,web2 --scope all --params '{\"path\":\"/\"}' --wait"
  )
)

const idArg = Args.integer({ name: "id" }).pipe(Args.withDescription("The job id"))

export const status = Command.make("status", { id: idArg, socket: socketOption, json: jsonOption }, (a) =>
  UnixSocket.status(a.socket, a.id).pipe(
    Effect.mapError(clientFailure),
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.fail(new Exit.ExitWith({ code: Exit.codes.usage, message: `job ${a.id} not found` })),
        onSome: (s) => printStatus(a.id, s, a.json)
      })
    )
  )).pipe(Command.withDescription("Show a job's state and its players' results. Example: orchestra status 42"))

export const wait = Command.make(
  "wait",
  { id: idArg, timeout: timeoutOption, socket: socketOption, json: jsonOption },
  (a) => waitFor(a.socket, a.id, a.timeout, a.json)
).pipe(
  Command.withDescription(
    "Wait until a job finishes; exit 0 OK, 1 FAIL, 2 PARTIAL_FAIL, 3 CANCELLED, 4 still pending at --timeout. Example: orchestra wait 42 --timeout 5m"
  )
)

export const players = Command.make("players", { socket: socketOption, json: jsonOption }, (a) =>
  UnixSocket.players(a.socket).pipe(
    Effect.mapError(clientFailure),
    Effect.flatMap((ps) =>
      a.json
        ? Console.log(JSON.stringify(ps))
        : Console.log(
          Output.table(
            ["player", "state", "slots", "running", "labels", "scores"],
            Object.entries(ps).map(([name, p]) => [
              name,
              p.online ? "online" : p.allowlisted ? "offline" : "removed",
              String(p.slots),
              String(p.running),
              Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(","),
              p.scores === undefined ? "(not reported)" : p.scores.join(",")
            ])
          )
        )
    )
  )).pipe(Command.withDescription("List players: online or not, slots, running tasks, labels and scores. Example: orchestra players"))
