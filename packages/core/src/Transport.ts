/**
 * Transports carry protocol messages between the conductor and players.
 * The conductor side accepts authenticated player sessions; the player side
 * connects to a conductor. `transport-tls` is the real one (TCP + mutual
 * TLS); `transport-memory` runs players in-process. Both pass the same
 * conformance suite.
 *
 * A transport authenticates the peer, checks that the name a player claims
 * in its `Hello` is one its credentials carry, keeps the session alive with
 * heartbeats (a dead peer ends the session within the configured time), and
 * checks every message against the protocol schemas: a malformed, oversized
 * or out-of-order message closes that session only.
 *
 * @since 0.1.0
 */
import type { Effect, Scope, Stream } from "effect"
import { Context } from "effect"
import type { SessionRefused, TransportError } from "./Errors.js"
import type { PlayerName } from "./Names.js"
import type { FromPlayer, Hello, ToPlayer, Welcome } from "./Protocol.js"

/** Who is on the other end. */
export interface Peer {
  /** Network address, for logs (`127.0.0.1:51234`, `memory:p1`). */
  readonly address: string
  /** Names the peer's credentials carry (certificate SAN DNS names and CN); the claimed name is one of them. */
  readonly identities: ReadonlyArray<string>
}

/** A connected, authenticated player, as the conductor sees it. */
export interface PlayerSession {
  readonly player: PlayerName
  readonly hello: Hello
  readonly peer: Peer
  /** Queue a message; messages are written in order, several per write when they pile up. Dropped once closed. */
  readonly send: (message: ToPlayer) => Effect.Effect<void>
  /** Messages after the `Hello`, in order. Ends when the session closes. */
  readonly incoming: Stream.Stream<FromPlayer>
  /** Close the session, telling the player why. */
  readonly close: (reason: string) => Effect.Effect<void>
}

/**
 * Decides whether a player may open a session. Runs in the session's scope:
 * finalizers added there run when the session ends. On success it returns
 * the function that runs the session; the session closes when that returns.
 */
export type Admit = (
  hello: Hello,
  peer: Peer
) => Effect.Effect<(session: PlayerSession) => Effect.Effect<void>, SessionRefused, Scope.Scope>

export interface ConductorTransportService {
  /** Accept player sessions until the scope closes; returns the address it listens on. */
  readonly serve: (admit: Admit) => Effect.Effect<{ readonly address: string }, TransportError, Scope.Scope>
  /** Re-read what can change at run time (a certificate revocation list). */
  readonly reload: Effect.Effect<void, TransportError>
}

export class ConductorTransport extends Context.Tag("@orchestra/core/ConductorTransport")<
  ConductorTransport,
  ConductorTransportService
>() {}

/** A session with a conductor, as a player sees it. */
export interface ConductorSession {
  readonly address: string
  readonly welcome: Welcome
  readonly send: (message: FromPlayer) => Effect.Effect<void>
  /** Messages after the `Welcome`. Ends when the session closes. */
  readonly incoming: Stream.Stream<ToPlayer>
  readonly close: Effect.Effect<void>
}

export interface PlayerTransportService {
  /**
   * Open a session with the conductor at `address`: authenticate, send the
   * `Hello`, wait for the `Welcome`. The session closes with the scope.
   */
  readonly connect: (
    address: string,
    hello: Hello
  ) => Effect.Effect<ConductorSession, TransportError | SessionRefused, Scope.Scope>
}

export class PlayerTransport extends Context.Tag("@orchestra/core/PlayerTransport")<
  PlayerTransport,
  PlayerTransportService
>() {}

export interface TransportContext {
  /** Directory that relative paths in the config are relative to. */
  readonly baseDir: string
  /** Where the transport reports refusals and dropped connections. */
  readonly log: (level: "info" | "warn" | "error", message: string, fields?: Readonly<Record<string, unknown>>) => void
}

/** What a transport plugin provides. */
export interface TransportPlugin {
  readonly kind: "transport"
  readonly name: string
  readonly description: string
  readonly conductor: (config: unknown, context: TransportContext) => Effect.Effect<ConductorTransportService, TransportError, Scope.Scope>
  readonly player: (config: unknown, context: TransportContext) => Effect.Effect<PlayerTransportService, TransportError, Scope.Scope>
}

export const isTransportPlugin = (u: unknown): u is TransportPlugin =>
  typeof u === "object" && u !== null && (u as { kind?: unknown }).kind === "transport" &&
  typeof (u as { name?: unknown }).name === "string" &&
  typeof (u as { conductor?: unknown }).conductor === "function" &&
  typeof (u as { player?: unknown }).player === "function"
