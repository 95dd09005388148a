/**
 * @orchestra/cli — the `orchestra` command, and the local cluster behind
 * its demo, the cross-process tests and the benchmarks.
 *
 * @since 0.1.0
 */
export * as Exit from "./Exit.js"
export * as LocalCluster from "./LocalCluster.js"
export * as Output from "./Output.js"
