/**
 * Development certificate tooling (`orchestra certs init|issue|revoke`): a
 * small certificate authority in one directory, with a certificate per
 * conductor and per player, and a certificate revocation list that the
 * conductor reads (`tls.crl`).
 *
 * Layout of the directory:
 * - `ca.pem`, `ca-key.pem` — the CA (ECDSA P-256, 10 years);
 * - `<name>.pem`, `<name>-key.pem` — one certificate and PKCS#8 key per
 *   conductor or player (keys are written with mode 0600);
 * - `crl.pem` — the CA's revocation list (written empty by `init`, so a
 *   conductor config can always name it).
 *
 * Conductor certificates carry SAN DNS = name + `localhost`, SAN IP =
 * 127.0.0.1 and ::1, and the serverAuth usage; player certificates carry
 * CN = SAN DNS = name and the clientAuth usage. Keys are ECDSA P-256, which
 * node:tls handles with TLS 1.2 and 1.3.
 *
 * @since 0.1.0
 */
import "reflect-metadata"
import * as x509 from "@peculiar/x509"
import { Data, Effect } from "effect"
import * as nodeCrypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

x509.cryptoProvider.set(nodeCrypto.webcrypto)
const subtle = nodeCrypto.webcrypto.subtle

// ---- errors -----------------------------------------------------------------

/** The directory has no CA (`ca.pem` and `ca-key.pem`); run `certs init` first. */
export class CaMissing extends Data.TaggedError("CaMissing")<{ readonly dir: string; readonly detail: string }> {
  override get message() {
    return `no certificate authority in ${this.dir}: ${this.detail} (run "orchestra certs init" first)`
  }
}

/** No certificate of that name in the directory. */
export class UnknownName extends Data.TaggedError("UnknownName")<{ readonly dir: string; readonly name: string }> {
  override get message() {
    return `no certificate named "${this.name}" in ${this.dir} (expected ${path.join(this.dir, `${this.name}.pem`)})`
  }
}

/** A certificate of that name already exists. */
export class CertificateExists extends Data.TaggedError("CertificateExists")<{ readonly dir: string; readonly name: string }> {
  override get message() {
    return `a certificate named "${this.name}" already exists in ${this.dir}`
  }
}

/** A name that cannot be a certificate name (or clashes with the directory's own files). */
export class InvalidName extends Data.TaggedError("InvalidName")<{ readonly name: string; readonly reason: string }> {
  override get message() {
    return `invalid certificate name ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

/** Reading, parsing, generating or writing a file failed. */
export class CertsIoError extends Data.TaggedError("CertsIoError")<{ readonly path: string; readonly detail: string }> {
  override get message() {
    return `${this.path}: ${this.detail}`
  }
}

export type CertsError = CaMissing | UnknownName | CertificateExists | InvalidName | CertsIoError

// ---- public API ---------------------------------------------------------------

export type Kind = "conductor" | "player"

export interface InitOptions {
  readonly dir: string
  /** The conductor's name (its certificate's CN and SAN DNS name). */
  readonly conductor: string
  readonly players: ReadonlyArray<string>
  /** Validity of the conductor and player certificates, in days (default 365). */
  readonly days?: number
}

export interface InitResult {
  readonly dir: string
  /** Whether a new CA was created (false: the existing one was reused). */
  readonly caCreated: boolean
  /** Names whose certificates were created now. */
  readonly created: ReadonlyArray<string>
  /** Names whose certificates already existed and were left as they are. */
  readonly existing: ReadonlyArray<string>
  /** One line per thing done, for the CLI to print. */
  readonly messages: ReadonlyArray<string>
}

export interface IssueOptions {
  readonly dir: string
  readonly name: string
  readonly kind: Kind
  /** Validity in days (default 365). */
  readonly days?: number
}

export interface Issued {
  readonly name: string
  readonly kind: Kind
  /** Path of the certificate (PEM). */
  readonly cert: string
  /** Path of the private key (PKCS#8 PEM, mode 0600). */
  readonly key: string
  /** Serial number, lowercase hex. */
  readonly serial: string
  readonly notAfter: Date
}

export interface RevokeOptions {
  readonly dir: string
  readonly name: string
}

export interface Revoked {
  readonly name: string
  readonly serial: string
  /** Path of the updated CRL. */
  readonly crl: string
  /** True when the serial was already on the list (nothing changed). */
  readonly alreadyRevoked: boolean
  /** Every serial on the list now. */
  readonly revokedSerials: ReadonlyArray<string>
}

/** The files of the directory. */
export const files = (dir: string) => ({
  ca: path.join(dir, "ca.pem"),
  caKey: path.join(dir, "ca-key.pem"),
  crl: path.join(dir, "crl.pem"),
  cert: (name: string) => path.join(dir, `${name}.pem`),
  key: (name: string) => path.join(dir, `${name}-key.pem`)
})

/**
 * Create the CA (or reuse the one in `dir`), the conductor's certificate,
 * the players' certificates that do not exist yet, and an empty CRL.
 */
export const init = (options: InitOptions): Effect.Effect<InitResult, CertsError> =>
  Effect.gen(function*() {
    const dir = path.resolve(options.dir)
    const names = [options.conductor, ...options.players]
    for (const n of names) yield* checkName(n)
    const seen = new Set<string>()
    for (const n of names) {
      if (seen.has(n)) return yield* new InvalidName({ name: n, reason: "given more than once" })
      seen.add(n)
    }
    yield* io(dir, () => fs.mkdirSync(dir, { recursive: true, mode: 0o700 }))
    const f = files(dir)
    const messages: Array<string> = []
    let caCreated = false
    if (!fs.existsSync(f.ca)) {
      if (fs.existsSync(f.caKey)) {
        return yield* new CertsIoError({ path: f.caKey, detail: "a CA key exists without ca.pem; refusing to overwrite it" })
      }
      yield* createCa(dir)
      caCreated = true
      messages.push(`created a new CA: ${f.ca}`)
    } else {
      messages.push(`reusing the existing CA in ${f.ca}`)
    }
    const ca = yield* loadCa(dir)
    const created: Array<string> = []
    const existing: Array<string> = []
    const kinds: Array<[string, Kind]> = [
      [options.conductor, "conductor"],
      ...options.players.map((p): [string, Kind] => [p, "player"])
    ]
    for (const [name, kind] of kinds) {
      if (fs.existsSync(f.cert(name))) {
        existing.push(name)
        messages.push(`kept the existing certificate of ${kind} "${name}": ${f.cert(name)}`)
        continue
      }
      const issued = yield* issueWith(ca, dir, name, kind, options.days)
      created.push(name)
      messages.push(`created the certificate of ${kind} "${name}": ${issued.cert} (key ${issued.key})`)
    }
    if (!fs.existsSync(f.crl)) {
      yield* writeCrl(ca, dir, [], 1n)
      messages.push(`created an empty revocation list: ${f.crl}`)
    }
    return { dir, caCreated, created, existing, messages }
  })

/** Issue one more certificate from the CA in `dir`. */
export const issue = (options: IssueOptions): Effect.Effect<Issued, CertsError> =>
  Effect.gen(function*() {
    const dir = path.resolve(options.dir)
    yield* checkName(options.name)
    const ca = yield* loadCa(dir)
    if (fs.existsSync(files(dir).cert(options.name))) {
      return yield* new CertificateExists({ dir, name: options.name })
    }
    return yield* issueWith(ca, dir, options.name, options.kind, options.days)
  })

/**
 * Add the serial of `DIR/<name>.pem` to `DIR/crl.pem` (created if missing),
 * keeping the entries already there, and sign the list with the CA.
 */
export const revoke = (options: RevokeOptions): Effect.Effect<Revoked, CertsError> =>
  Effect.gen(function*() {
    const dir = path.resolve(options.dir)
    yield* checkName(options.name)
    const ca = yield* loadCa(dir)
    const f = files(dir)
    if (!fs.existsSync(f.cert(options.name))) return yield* new UnknownName({ dir, name: options.name })
    const cert = yield* parseCert(f.cert(options.name))
    const serial = cert.serialNumber.toLowerCase()
    const entries: Array<CrlEntry> = []
    let number = 1n
    if (fs.existsSync(f.crl)) {
      const pem = yield* io(f.crl, () => fs.readFileSync(f.crl, "utf8"))
      const crl = yield* io(f.crl, () => new x509.X509Crl(pem), "not a valid CRL")
      for (const e of crl.entries) entries.push({ serial: e.serialNumber.toLowerCase(), date: e.revocationDate })
      number = crlNumberOf(crl) + 1n
    }
    const already = entries.some((e) => e.serial === serial)
    if (!already) {
      entries.push({ serial, date: new Date() })
      yield* writeCrl(ca, dir, entries, number)
    }
    return {
      name: options.name,
      serial,
      crl: f.crl,
      alreadyRevoked: already,
      revokedSerials: entries.map((e) => e.serial)
    }
  })

/** The serials on a CRL file (lowercase hex); empty when the file does not exist. */
export const revokedSerials = (crlPath: string): Effect.Effect<ReadonlyArray<string>, CertsIoError> =>
  Effect.gen(function*() {
    if (!fs.existsSync(crlPath)) return []
    const pem = yield* io(crlPath, () => fs.readFileSync(crlPath, "utf8"))
    const crl = yield* io(crlPath, () => new x509.X509Crl(pem), "not a valid CRL")
    return crl.entries.map((e) => e.serialNumber.toLowerCase())
  })

// ---- internals ------------------------------------------------------------------

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const
const CA_DAYS = 3650
const DAY_MS = 86_400_000
/** Certificates start a little in the past, for clocks that disagree. */
const SKEW_MS = 5 * 60_000

interface Ca {
  readonly cert: x509.X509Certificate
  readonly key: nodeCrypto.webcrypto.CryptoKey
}

interface CrlEntry {
  readonly serial: string
  readonly date: Date
}

const RESERVED = new Set(["ca", "ca-key", "crl", "revoked"])

const checkName = (name: string): Effect.Effect<void, InvalidName> => {
  const fail = (reason: string) => Effect.fail(new InvalidName({ name, reason }))
  if (name.length === 0) return fail("must not be empty")
  if (name.length > 128) return fail("must be at most 128 characters")
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    return fail("use letters, digits, '.', '_' and '-' only, starting with a letter or digit")
  }
  if (RESERVED.has(name)) return fail("the name is used by the CA's own files")
  if (name.endsWith("-key")) return fail("a name must not end in \"-key\" (the key files are named <name>-key.pem)")
  return Effect.void
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const io = <A>(p: string, f: () => A, what?: string): Effect.Effect<A, CertsIoError> =>
  Effect.try({ try: f, catch: (e) => new CertsIoError({ path: p, detail: what ? `${what}: ${message(e)}` : message(e) }) })

const ioAsync = <A>(p: string, f: () => Promise<A>, what: string): Effect.Effect<A, CertsIoError> =>
  Effect.tryPromise({ try: f, catch: (e) => new CertsIoError({ path: p, detail: `${what}: ${message(e)}` }) })

/** Write a file atomically (temp file + rename), with the given mode. */
const writeFile = (p: string, data: string, mode: number): Effect.Effect<void, CertsIoError> =>
  io(p, () => {
    const tmp = `${p}.${process.pid}.${nodeCrypto.randomBytes(4).toString("hex")}.tmp`
    try {
      fs.writeFileSync(tmp, data, { mode })
      fs.chmodSync(tmp, mode)
      fs.renameSync(tmp, p)
    } catch (e) {
      fs.rmSync(tmp, { force: true })
      throw e
    }
  })

/** A random positive 128-bit serial, as hex. */
const randomSerial = (): string => {
  const bytes = nodeCrypto.randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x10
  return bytes.toString("hex")
}

const pkcs8Pem = (der: ArrayBuffer): string => x509.PemConverter.encode(der, "PRIVATE KEY")

const generateKeys = (p: string) =>
  ioAsync(p, () => subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]), "generating a key pair")

const createCa = (dir: string): Effect.Effect<void, CertsIoError> =>
  Effect.gen(function*() {
    const f = files(dir)
    const keys = yield* generateKeys(f.caKey)
    const now = Date.now()
    const cert = yield* ioAsync(f.ca, async () =>
      x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: randomSerial(),
        name: `CN=Orchestra development CA ${nodeCrypto.randomBytes(4).toString("hex")}, O=Orchestra`,
        notBefore: new Date(now - SKEW_MS),
        notAfter: new Date(now + CA_DAYS * DAY_MS),
        keys,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
        ]
      }), "creating the CA certificate")
    const keyDer = yield* ioAsync(f.caKey, () => subtle.exportKey("pkcs8", keys.privateKey), "exporting the CA key")
    yield* writeFile(f.caKey, pkcs8Pem(keyDer), 0o600)
    yield* writeFile(f.ca, cert.toString("pem") + "\n", 0o644)
  })

const parseCert = (p: string): Effect.Effect<x509.X509Certificate, CertsIoError> =>
  Effect.gen(function*() {
    const pem = yield* io(p, () => fs.readFileSync(p, "utf8"))
    return yield* io(p, () => new x509.X509Certificate(pem), "not a valid PEM certificate")
  })

/** Import a PKCS#8 PEM private key (ECDSA P-256 or RSA) for signing. */
const importKey = (p: string): Effect.Effect<nodeCrypto.webcrypto.CryptoKey, CertsIoError> =>
  Effect.gen(function*() {
    const pem = yield* io(p, () => fs.readFileSync(p, "utf8"))
    const keyObject = yield* io(p, () => nodeCrypto.createPrivateKey(pem), "not a valid private key")
    const der = keyObject.export({ format: "der", type: "pkcs8" })
    const bytes = new Uint8Array(der.buffer, der.byteOffset, der.byteLength)
    const type = keyObject.asymmetricKeyType
    if (type === "ec") {
      return yield* ioAsync(p, () => subtle.importKey("pkcs8", bytes, KEY_ALGORITHM, false, ["sign"]), "importing the key")
    }
    if (type === "rsa") {
      return yield* ioAsync(
        p,
        () => subtle.importKey("pkcs8", bytes, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]),
        "importing the key"
      )
    }
    return yield* new CertsIoError({ path: p, detail: `unsupported key type ${String(type)} (expected EC P-256 or RSA)` })
  })

const loadCa = (dir: string): Effect.Effect<Ca, CaMissing | CertsIoError> =>
  Effect.gen(function*() {
    const f = files(dir)
    if (!fs.existsSync(f.ca)) return yield* new CaMissing({ dir, detail: `${f.ca} does not exist` })
    if (!fs.existsSync(f.caKey)) return yield* new CaMissing({ dir, detail: `${f.caKey} does not exist` })
    const cert = yield* parseCert(f.ca)
    const key = yield* importKey(f.caKey)
    return { cert, key }
  })

const signingAlgorithmOf = (key: nodeCrypto.webcrypto.CryptoKey) =>
  key.algorithm.name === "ECDSA" ? SIGNING_ALGORITHM : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }

const issueWith = (ca: Ca, dir: string, name: string, kind: Kind, days: number | undefined): Effect.Effect<Issued, CertsIoError> =>
  Effect.gen(function*() {
    const f = files(dir)
    const validDays = days ?? 365
    if (!Number.isFinite(validDays) || validDays <= 0) {
      return yield* new CertsIoError({ path: f.cert(name), detail: `days must be a positive number (got ${validDays})` })
    }
    const keys = yield* generateKeys(f.key(name))
    const now = Date.now()
    const notAfter = new Date(Math.min(now + validDays * DAY_MS, ca.cert.notAfter.getTime()))
    const san: Array<{ type: "dns" | "ip"; value: string }> = kind === "conductor"
      ? [
        { type: "dns", value: name },
        ...(name === "localhost" ? [] : [{ type: "dns" as const, value: "localhost" }]),
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" }
      ]
      : [{ type: "dns", value: name }]
    const serial = randomSerial()
    const cert = yield* ioAsync(f.cert(name), async () =>
      x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: `CN=${name}, O=Orchestra`,
        issuer: ca.cert.subjectName,
        notBefore: new Date(now - SKEW_MS),
        notAfter,
        publicKey: keys.publicKey,
        signingKey: ca.key,
        signingAlgorithm: signingAlgorithmOf(ca.key),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension(
            [kind === "conductor" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth],
            false
          ),
          new x509.SubjectAlternativeNameExtension(san, false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey)
        ]
      }), "creating the certificate")
    const keyDer = yield* ioAsync(f.key(name), () => subtle.exportKey("pkcs8", keys.privateKey), "exporting the key")
    yield* writeFile(f.key(name), pkcs8Pem(keyDer), 0o600)
    yield* writeFile(f.cert(name), cert.toString("pem") + "\n", 0o644)
    return { name, kind, cert: f.cert(name), key: f.key(name), serial, notAfter }
  })

const CRL_NUMBER_OID = "2.5.29.20"

/** DER encoding of a non-negative INTEGER. */
const derInteger = (n: bigint): Uint8Array => {
  let hex = n.toString(16)
  if (hex.length % 2 === 1) hex = "0" + hex
  let bytes = Buffer.from(hex, "hex")
  if ((bytes[0]! & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes])
  return Uint8Array.from([0x02, bytes.length, ...bytes])
}

const crlNumberOf = (crl: x509.X509Crl): bigint => {
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID)
  if (ext === undefined) return 0n
  const v = new Uint8Array(ext.value)
  if (v[0] !== 0x02 || v.length < 3) return 0n
  return BigInt("0x" + Buffer.from(v.subarray(2, 2 + v[1]!)).toString("hex"))
}

const writeCrl = (ca: Ca, dir: string, entries: ReadonlyArray<CrlEntry>, number: bigint): Effect.Effect<void, CertsIoError> =>
  Effect.gen(function*() {
    const f = files(dir)
    const crl = yield* ioAsync(f.crl, async () =>
      x509.X509CrlGenerator.create({
        issuer: ca.cert.subjectName,
        thisUpdate: new Date(Date.now() - SKEW_MS),
        nextUpdate: ca.cert.notAfter,
        signingKey: ca.key,
        signingAlgorithm: signingAlgorithmOf(ca.key),
        extensions: [
          await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
          new x509.Extension(CRL_NUMBER_OID, false, derInteger(number))
        ],
        entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.date }))
      }), "creating the revocation list")
    // OpenSSL (and so node:tls) reads only the "X509 CRL" PEM label.
    yield* writeFile(f.crl, x509.PemConverter.encode(crl.rawData, "X509 CRL") + "\n", 0o644)
  })
