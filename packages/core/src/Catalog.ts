/**
 * What a player reports about the scores it can run.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JsonObject } from "./Json.js"
import { ScoreName } from "./Names.js"

export const Interface = Schema.Literal("env", "pipe", "json")
export type Interface = typeof Interface.Type

/** One score as a player reports it to the conductor. */
export class ScoreInfo extends Schema.Class<ScoreInfo>("ScoreInfo")({
  name: ScoreName,
  interface: Interface,
  description: Schema.optional(Schema.String),
  /** JSON Schema of the params object (absent: any string map, as the original). */
  parameters: Schema.optional(JsonObject),
  /** JSON Schema of the response, when declared. */
  outputs: Schema.optional(JsonObject),
  /** Whether re-running after a player crash is safe. */
  idempotent: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Digest of the executable and manifest, to tell versions apart across players. */
  digest: Schema.String,
  /** Where the manifest came from: a YAML manifest, a legacy `.conf`, or none. */
  source: Schema.Literal("manifest", "legacy-conf", "none")
}) {}

export const Catalog = Schema.Array(ScoreInfo)
export type Catalog = typeof Catalog.Type
