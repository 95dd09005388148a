/**
 * @orchestra/manifest — score manifests: YAML with source positions (also
 * used by every configuration loader), the manifest format and its legacy
 * `.conf` form, parameter validation, and the score directory scan.
 *
 * @since 0.1.0
 */
export * as Yaml from "./Yaml.js"
export * as Manifest from "./Manifest.js"
export * as Params from "./Params.js"
export * as ScoreDirectory from "./ScoreDirectory.js"
export * as Units from "./Units.js"
