/**
 * The certificate tooling: what `init`, `issue` and `revoke` write, checked
 * with node:crypto and node:tls (which must accept the certificates and the
 * CRL), and the typed errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as tls from "node:tls"
import { Certs } from "../src/index.js"
import { tempDir } from "./fixture.js"

const read = (p: string) => fs.readFileSync(p)
const cert = (p: string) => new crypto.X509Certificate(read(p))
const mode = (p: string) => fs.statSync(p).mode & 0o777

describe("Certs", () => {
  it.effect("init writes a CA, a conductor and players, keys 0600, with the right names and usages", () =>
    Effect.gen(function*() {
      const dir = tempDir("init")
      const r = yield* Certs.init({ dir, conductor: "conductor-1", players: ["web-1", "db.2"], days: 30 })
      expect(r.caCreated).toBe(true)
      expect(r.created).toEqual(["conductor-1", "web-1", "db.2"])
      expect(r.existing).toEqual([])
      const f = Certs.files(dir)
      for (const p of [f.ca, f.caKey, f.crl, ...["conductor-1", "web-1", "db.2"].flatMap((n) => [f.cert(n), f.key(n)])]) {
        expect(fs.existsSync(p)).toBe(true)
      }
      for (const p of [f.caKey, f.key("conductor-1"), f.key("web-1")]) {
        expect(mode(p)).toBe(0o600)
        expect(read(p).toString()).toContain("-----BEGIN PRIVATE KEY-----")
        expect(crypto.createPrivateKey(read(p)).asymmetricKeyType).toBe("ec")
      }
      const ca = cert(f.ca)
      expect(ca.ca).toBe(true)
      const conductor = cert(f.cert("conductor-1"))
      expect(conductor.verify(ca.publicKey)).toBe(true)
      expect(conductor.checkIssued(ca)).toBe(true)
      expect(conductor.subjectAltName).toContain("DNS:conductor-1")
      expect(conductor.subjectAltName).toContain("DNS:localhost")
      expect(conductor.subjectAltName).toContain("IP Address:127.0.0.1")
      expect(conductor.checkHost("conductor-1")).toBe("conductor-1")
      expect(conductor.checkIP("127.0.0.1")).toBe("127.0.0.1")
      expect(conductor.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"])
      expect(conductor.ca).toBe(false)
      const player = cert(f.cert("web-1"))
      expect(player.verify(ca.publicKey)).toBe(true)
      expect(player.subject).toContain("CN=web-1")
      expect(player.subjectAltName).toBe("DNS:web-1")
      expect(player.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"])
      expect(player.checkPrivateKey(crypto.createPrivateKey(read(f.key("web-1"))))).toBe(true)
      const days = (new Date(player.validTo).getTime() - Date.now()) / 86_400_000
      expect(days).toBeGreaterThan(29)
      expect(days).toBeLessThan(31)
      expect(yield* Certs.revokedSerials(f.crl)).toEqual([])
      // node:tls accepts all of it.
      tls.createSecureContext({ ca: read(f.ca), cert: read(f.cert("conductor-1")), key: read(f.key("conductor-1")), crl: read(f.crl) })
    }))

  it.effect("init again reuses the CA and adds only the missing certificates, saying so", () =>
    Effect.gen(function*() {
      const dir = tempDir("reinit")
      yield* Certs.init({ dir, conductor: "c", players: ["p1"] })
      const f = Certs.files(dir)
      const caBefore = read(f.ca).toString()
      const p1Before = read(f.cert("p1")).toString()
      const r = yield* Certs.init({ dir, conductor: "c", players: ["p1", "p2"] })
      expect(r.caCreated).toBe(false)
      expect(r.created).toEqual(["p2"])
      expect(r.existing).toEqual(["c", "p1"])
      expect(r.messages.join("\n")).toContain("reusing the existing CA")
      expect(read(f.ca).toString()).toBe(caBefore)
      expect(read(f.cert("p1")).toString()).toBe(p1Before)
      expect(cert(f.cert("p2")).verify(cert(f.ca).publicKey)).toBe(true)
    }))

  it.effect("issue adds one certificate from the existing CA; a taken name and a missing CA are typed errors", () =>
    Effect.gen(function*() {
      const dir = tempDir("issue")
      const noCa = yield* Certs.issue({ dir, name: "p1", kind: "player" }).pipe(Effect.flip)
      expect(noCa._tag).toBe("CaMissing")
      yield* Certs.init({ dir, conductor: "c", players: [] })
      const issued = yield* Certs.issue({ dir, name: "c2", kind: "conductor" })
      expect(issued.kind).toBe("conductor")
      const c2 = cert(issued.cert)
      expect(c2.verify(cert(Certs.files(dir).ca).publicKey)).toBe(true)
      expect(c2.serialNumber.toLowerCase()).toBe(issued.serial)
      expect(c2.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"])
      const again = yield* Certs.issue({ dir, name: "c2", kind: "player" }).pipe(Effect.flip)
      expect(again._tag).toBe("CertificateExists")
      for (const bad of ["", "a/b", "ca", "x-key", "crl", "-x", "a b", "ü"]) {
        const e = yield* Certs.issue({ dir, name: bad, kind: "player" }).pipe(Effect.flip)
        expect(e._tag).toBe("InvalidName")
      }
      const dup = yield* Certs.init({ dir, conductor: "c", players: ["c"] }).pipe(Effect.flip)
      expect(dup._tag).toBe("InvalidName")
    }))

  it.effect("revoke keeps earlier entries, is idempotent, and writes a CRL node:tls loads", () =>
    Effect.gen(function*() {
      const dir = tempDir("revoke")
      yield* Certs.init({ dir, conductor: "c", players: ["p1", "p2", "p3"] })
      const f = Certs.files(dir)
      const unknown = yield* Certs.revoke({ dir, name: "nobody" }).pipe(Effect.flip)
      expect(unknown._tag).toBe("UnknownName")
      const r1 = yield* Certs.revoke({ dir, name: "p1" })
      expect(r1.alreadyRevoked).toBe(false)
      expect(r1.serial).toBe(cert(f.cert("p1")).serialNumber.toLowerCase())
      fs.rmSync(f.crl)
      // Without a CRL file, revoke creates one.
      yield* Certs.revoke({ dir, name: "p1" })
      const r2 = yield* Certs.revoke({ dir, name: "p2" })
      expect(r2.revokedSerials).toEqual([r1.serial, r2.serial])
      const r3 = yield* Certs.revoke({ dir, name: "p2" })
      expect(r3.alreadyRevoked).toBe(true)
      expect(yield* Certs.revokedSerials(f.crl)).toEqual([r1.serial, r2.serial])
      expect(read(f.crl).toString()).toContain("-----BEGIN X509 CRL-----")
      tls.createSecureContext({ ca: read(f.ca), crl: read(f.crl) })
    }))

  it.effect("revoke without a CA is CaMissing", () =>
    Effect.gen(function*() {
      const dir = tempDir("revoke-noca")
      const e = yield* Certs.revoke({ dir, name: "p1" }).pipe(Effect.flip)
      expect(e._tag).toBe("CaMissing")
      expect(e.message).toContain("certs init")
    }))
})
