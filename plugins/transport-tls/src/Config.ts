/**
 * Configuration of the TLS transport, as it appears in the `transport`
 * block of `conductor.yaml` and `player.yaml`, and the loading of the PEM
 * files it names (paths relative to the config's directory). Every file is
 * checked on load, so a missing, unreadable or malformed certificate, key or
 * CRL is a `TransportError` naming that file.
 *
 * @since 0.1.0
 */
import { Errors } from "@orchestra/core"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as nodeCrypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as tls from "node:tls"
import { DEFAULT_MAX_FRAME_BYTES } from "./Frame.js"

const Path = Schema.String.pipe(Schema.minLength(1))
const Millis = Schema.Int.pipe(Schema.between(1, 86_400_000))

export const Heartbeat = Schema.Struct({
  /** Send a ping when nothing was sent for this long. */
  intervalMs: Schema.optionalWith(Millis, { default: () => 5000 }),
  /** Close the session when nothing was received for this long. */
  timeoutMs: Schema.optionalWith(Millis, { default: () => 15000 })
}).pipe(
  Schema.filter((h) =>
    h.timeoutMs > h.intervalMs ||
    `heartbeat.timeoutMs (${h.timeoutMs}) must be greater than heartbeat.intervalMs (${h.intervalMs})`
  )
)
export type Heartbeat = typeof Heartbeat.Type

const MaxFrameBytes = Schema.Int.pipe(Schema.between(1024, 1024 * 1024 * 1024))

/** `tls` block of the conductor. */
export const ConductorTls = Schema.Struct({
  /** CA certificate(s) that issued the players' certificates. */
  ca: Path,
  /** The conductor's own certificate and key. */
  cert: Path,
  key: Path,
  /** Certificate revocation list (PEM); re-read on reload. */
  crl: Schema.optional(Path)
})

export const ConductorConfig = Schema.Struct({
  listen: Schema.optionalWith(
    Schema.Struct({
      host: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => "0.0.0.0" }),
      port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 7030 })
    }),
    { default: () => ({ host: "0.0.0.0", port: 7030 }) }
  ),
  tls: ConductorTls,
  /** Name the conductor gives in `Welcome` (default: its certificate's CN). */
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  maxFrameBytes: Schema.optionalWith(MaxFrameBytes, { default: () => DEFAULT_MAX_FRAME_BYTES }),
  heartbeat: Schema.optionalWith(Heartbeat, { default: () => ({ intervalMs: 5000, timeoutMs: 15000 }) }),
  /** Time for a new connection to complete the TLS handshake and send its `Hello`. */
  helloTimeoutMs: Schema.optionalWith(Millis, { default: () => 10_000 })
})
export type ConductorConfig = typeof ConductorConfig.Type
export type ConductorConfigInput = typeof ConductorConfig.Encoded

/** `tls` block of a player. */
export const PlayerTls = Schema.Struct({
  /** CA certificate(s) that issued the conductor's certificate. */
  ca: Path,
  /** The player's own certificate and key. */
  cert: Path,
  key: Path
})

export const PlayerConfig = Schema.Struct({
  tls: PlayerTls,
  /** Name the conductor's certificate must carry (default: the host part of the address). */
  conductorName: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  maxFrameBytes: Schema.optionalWith(MaxFrameBytes, { default: () => DEFAULT_MAX_FRAME_BYTES }),
  heartbeat: Schema.optionalWith(Heartbeat, { default: () => ({ intervalMs: 5000, timeoutMs: 15000 }) }),
  /** Time for connecting, the TLS handshake and the `Welcome`. */
  connectTimeoutMs: Schema.optionalWith(Millis, { default: () => 10_000 })
})
export type PlayerConfig = typeof PlayerConfig.Type
export type PlayerConfigInput = typeof PlayerConfig.Encoded

const configError = (message: string) => new Errors.TransportError({ reason: "config", message })

const decodeWith = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Effect.Effect<A, Errors.TransportError> =>
    Either.match(decode(input ?? {}), {
      onLeft: (e) => Effect.fail(configError(`invalid ${what} config:\n${ParseResult.TreeFormatter.formatErrorSync(e)}`)),
      onRight: Effect.succeed
    })
}

/** Check the conductor side's config block. */
export const decodeConductor = decodeWith(ConductorConfig, "tls transport (conductor)")
/** Check the player side's config block. */
export const decodePlayer = decodeWith(PlayerConfig, "tls transport (player)")

// ---- PEM files ------------------------------------------------------------------

/** The secure-context material, read and checked. */
export interface Material {
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: Buffer
  readonly crl: Buffer | undefined
  /** The CN of the own certificate. */
  readonly commonName: string | undefined
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const readFile = (baseDir: string, file: string, what: string): Effect.Effect<{ path: string; data: Buffer }, Errors.TransportError> => {
  const p = path.resolve(baseDir, file)
  return Effect.try({
    try: () => ({ path: p, data: fs.readFileSync(p) }),
    catch: (e) => configError(`cannot read the ${what} file ${p}: ${message(e)}`)
  })
}

const check = <A>(p: string, what: string, f: () => A): Effect.Effect<A, Errors.TransportError> =>
  Effect.try({ try: f, catch: (e) => configError(`the ${what} file ${p} is not valid: ${message(e)}`) })

const commonNameOf = (subject: string): string | undefined => {
  for (const line of subject.split("\n")) {
    if (line.startsWith("CN=")) return line.slice(3)
  }
  return undefined
}

/** Read and check the CA, certificate, key and CRL files named in a `tls` block. */
export const loadMaterial = (
  baseDir: string,
  files: { readonly ca: string; readonly cert: string; readonly key: string; readonly crl?: string | undefined }
): Effect.Effect<Material, Errors.TransportError> =>
  Effect.gen(function*() {
    const ca = yield* readFile(baseDir, files.ca, "CA certificate")
    yield* check(ca.path, "CA certificate", () => {
      if (!ca.data.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it")
      return new nodeCrypto.X509Certificate(ca.data)
    })
    const cert = yield* readFile(baseDir, files.cert, "certificate")
    const x509 = yield* check(cert.path, "certificate", () => new nodeCrypto.X509Certificate(cert.data))
    const key = yield* readFile(baseDir, files.key, "private key")
    const keyObject = yield* check(key.path, "private key", () => nodeCrypto.createPrivateKey(key.data))
    if (!x509.checkPrivateKey(keyObject)) {
      return yield* configError(`the private key ${key.path} does not belong to the certificate ${cert.path}`)
    }
    let crl: Buffer | undefined
    if (files.crl !== undefined) {
      const c = yield* readFile(baseDir, files.crl, "certificate revocation list")
      yield* check(c.path, "certificate revocation list", () => {
        if (!c.data.includes("-----BEGIN X509 CRL-----")) throw new Error("no PEM \"X509 CRL\" block in it")
        tls.createSecureContext({ crl: c.data })
      })
      crl = c.data
    }
    return { ca: ca.data, cert: cert.data, key: key.data, crl, commonName: commonNameOf(x509.subject) }
  })

/** The secure-context options of some material. */
export const secureContextOptions = (m: Material): tls.SecureContextOptions => ({
  ca: m.ca,
  cert: m.cert,
  key: m.key,
  ...(m.crl !== undefined ? { crl: m.crl } : {}),
  minVersion: "TLSv1.2"
})
