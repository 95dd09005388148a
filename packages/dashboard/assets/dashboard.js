// Orchestra's live dashboard: one plain ES module, no dependencies, no build.
//
// It reads the conductor's HTTP API (/v1/..., bearer token) once, then
// follows the event stream (GET /v1/events, Server-Sent Events) and keeps
// the page current without reloading: job, player and pipeline events update
// the tables at once, and the views an event touches (players, queue counts,
// the open job, the open pipeline run) are re-read shortly after, a few at a
// time. EventSource resumes with Last-Event-ID by itself; a `reset` event
// (events lost, e.g. the conductor restarted) re-reads everything.
//
// Pipeline runs need a token without score or player limits: with one that
// has limits the conductor answers 403 and the pipelines panel says so.
//
// The token is asked for once and kept in sessionStorage (this tab only).
// EventSource cannot send headers, so the stream gets it as ?access_token=.

const API = "/v1"
const TOKEN_KEY = "orchestra.token"
const JOB_LIMIT = 50
const PENDING_LIMIT = 1000
const PIPELINE_LIMIT = 20
const REFRESH_DELAY_MS = 200
const RECONNECT_DELAY_MS = 3000
const EVENT_TYPES = [
  "job.submitted",
  "task.dispatched",
  "task.started",
  "task.finished",
  "job.finished",
  "player.connected",
  "player.disconnected",
  "pipeline.started",
  "pipeline.progressed",
  "pipeline.finished",
  "reset"
]
/** The views a `reset` (or a stream opened after a failed start) re-reads. */
const ALL_VIEWS = ["health", "players", "jobs", "pending", "scores", "detail", "pipelines", "run"]

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  /** @type {Array<any>} */
  players: [],
  playerSummary: undefined,
  /** @type {Map<number, any>} job id → summary */
  jobs: new Map(),
  pendingJobs: undefined,
  pendingMore: false,
  health: undefined,
  /** @type {number | undefined} */
  selected: undefined,
  detail: undefined,
  detailError: undefined,
  /** @type {{ job: number, key: string, attempt: number, player: string, text?: string, error?: string } | undefined} */
  log: undefined,
  scores: [],
  /** @type {Map<number, any>} run id → summary, with `jobs` ({name, status, id?, state?, reason?}) once known */
  pipelines: new Map(),
  /** Why the runs cannot be shown (a token with limits, an older conductor), else undefined. */
  pipelinesNote: undefined,
  /** @type {number | undefined} the open pipeline run */
  run: undefined,
  runDetail: undefined,
  runError: undefined,
  /** "connecting" | "live" | "reconnecting" | "offline" */
  live: "connecting",
  lastEventId: undefined,
  /** @type {EventSource | undefined} */
  events: undefined,
  started: false,
  /** The views were not all read (start-up failed, or the stream was refused): re-read them when the stream opens. */
  stale: false
}

// ---- a tiny view layer --------------------------------------------------------

const $ = (id) => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`no #${id} in the page`)
  return el
}

/** Create an element: attributes (class, dataset, on<event>, others as strings) and children (nodes or text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === "class") el.className = v
    else if (k === "dataset") Object.assign(el.dataset, v)
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? "" : String(v))
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : String(c))
  }
  return el
}

/** Replace an element's children, leaving out the absent ones (`null`, `undefined`, `false`). */
const fill = (el, ...children) => el.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false))

/** A labelled value of a summary line. */
const kv = (k, ...v) => h("span", {}, h("span", { class: "k" }, k), ...v)

const badge = (value) => h("span", { class: "badge", dataset: { v: value } }, value)

/** A relative time, kept current by tick(). */
const age = (ms, suffix = " ago") =>
  ms === undefined ? "–" : h("time", { datetime: new Date(ms).toISOString(), title: fmtTime(ms), dataset: { t: ms, suffix } }, fmtAge(Date.now() - ms) + suffix)

function fmtAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const hr = Math.floor(m / 60)
  if (hr < 48) return `${hr}h ${m % 60}m`
  return `${Math.floor(hr / 24)}d`
}

function fmtTime(ms) {
  if (ms === undefined) return "–"
  const d = new Date(ms)
  const sameDay = d.toDateString() === new Date().toDateString()
  const time = d.toLocaleTimeString([], { hour12: false })
  return sameDay ? time : `${d.toLocaleDateString()} ${time}`
}

function fmtDuration(ms) {
  if (ms === undefined || !Number.isFinite(ms)) return "–"
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`
  return fmtAge(ms)
}

const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`)

const jsonBlock = (value) => {
  if (value === undefined || (typeof value === "object" && value !== null && Object.keys(value).length === 0)) {
    return h("span", { class: "muted" }, "–")
  }
  return h("pre", { class: "json" }, JSON.stringify(value, null, 1))
}

const emptyRow = (cols, text) => h("tr", { class: "empty" }, h("td", { colspan: cols }, text))

function replaceBody(table, rows) {
  const tbody = table.tBodies[0]
  tbody.replaceChildren(...rows)
}

/** Update every relative time in place (once a second). */
function tick() {
  const now = Date.now()
  for (const el of document.querySelectorAll("time[data-t]")) {
    const text = fmtAge(now - Number(el.dataset.t)) + (el.dataset.suffix ?? "")
    if (el.textContent !== text) el.textContent = text
  }
}

// ---- HTTP ----------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, body) {
    super(typeof body === "object" && body !== null && typeof body.message === "string" ? body.message : `HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

async function api(path, { method = "GET", json } = {}) {
  const headers = new Headers({ accept: "application/json, text/plain" })
  if (state.token !== "") headers.set("authorization", `Bearer ${state.token}`)
  if (json !== undefined) headers.set("content-type", "application/json")
  let res
  try {
    res = await fetch(path, { method, headers, cache: "no-store", body: json === undefined ? undefined : JSON.stringify(json) })
  } catch (e) {
    showBanner("Cannot reach the conductor. Retrying as the event stream reconnects…")
    throw e
  }
  const text = await res.text()
  const type = res.headers.get("content-type") ?? ""
  let body = text
  if (type.includes("json") && text !== "") {
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
  }
  if (res.status === 401) {
    unauthorized(body)
    throw new HttpError(401, body)
  }
  if (!res.ok) throw new HttpError(res.status, body)
  hideBanner()
  return body
}

function showBanner(text) {
  const el = $("banner")
  el.textContent = text
  el.hidden = false
}

function hideBanner() {
  $("banner").hidden = true
}

// ---- authentication --------------------------------------------------------------

function showLogin(message) {
  const dialog = $("login")
  const error = $("login-error")
  error.textContent = message ?? ""
  error.hidden = message === undefined
  $("sign-out").hidden = true
  if (!dialog.open) dialog.showModal()
  $("login-token").focus()
}

function unauthorized(body) {
  // Several reads may be refused at once: the first one handles it.
  if (!state.started && $("login").open) return
  const had = state.token !== ""
  closeEvents()
  state.token = ""
  state.started = false
  sessionStorage.removeItem(TOKEN_KEY)
  setLive("offline")
  const why = typeof body === "object" && body !== null && typeof body.message === "string" ? body.message : undefined
  showLogin(had ? `The conductor refused this token${why ? `: ${why}` : ""}.` : undefined)
}

function onLogin(e) {
  e.preventDefault()
  const token = /** @type {HTMLInputElement} */ ($("login-token")).value.trim()
  if (token === "") return
  state.token = token
  sessionStorage.setItem(TOKEN_KEY, token)
  $("login").close()
  const input = /** @type {HTMLInputElement} */ ($("login-token"))
  input.value = ""
  start()
}

function forgetToken() {
  closeEvents()
  state.token = ""
  state.started = false
  sessionStorage.removeItem(TOKEN_KEY)
  setLive("offline")
  showLogin()
}

// ---- loading -----------------------------------------------------------------------

async function loadHealth() {
  state.health = await api("/healthz")
  $("conductor").textContent = state.health?.name ?? ""
  renderQueue()
}

async function loadPlayers() {
  const view = await api(`${API}/players`)
  state.players = [...view.players].sort((a, b) => a.name.localeCompare(b.name))
  state.playerSummary = view.summary
  renderPlayers()
  renderQueue()
}

async function loadJobs() {
  const page = await api(`${API}/jobs?limit=${JOB_LIMIT}`)
  const next = new Map()
  for (const j of page.jobs) {
    const known = state.jobs.get(j.id)
    // A finished state is final: never let an older read put it back to PENDING.
    next.set(j.id, known !== undefined && known.state !== "PENDING" && j.state === "PENDING" ? known : j)
  }
  // Keep jobs that events added after the read began.
  for (const [id, j] of state.jobs) if (!next.has(id) && id > (page.jobs[0]?.id ?? 0)) next.set(id, j)
  state.jobs = next
  renderJobs()
}

async function loadPending() {
  const page = await api(`${API}/jobs?state=PENDING&limit=${PENDING_LIMIT}`)
  state.pendingJobs = page.jobs.length
  state.pendingMore = page.next !== undefined
  renderQueue()
}

async function loadScores() {
  const view = await api(`${API}/scores`)
  state.scores = view.scores
  $("score-names").replaceChildren(...view.scores.map((s) => h("option", { value: s.name }, s.description ?? "")))
}

async function loadDetail() {
  const id = state.selected
  if (id === undefined) return
  try {
    const detail = await api(`${API}/jobs/${id}`)
    if (state.selected !== id) return
    state.detail = detail
    state.detailError = undefined
    const known = state.jobs.get(id)
    if (known !== undefined && !(known.state !== "PENDING" && detail.state === "PENDING")) {
      state.jobs.set(id, { ...known, state: detail.state, finishedAt: detail.finishedAt })
      renderJobs()
    }
  } catch (e) {
    if (state.selected !== id) return
    state.detail = undefined
    state.detailError = e instanceof HttpError && e.status === 404 ? `Job ${id} does not exist (or was purged).` : String(e.message ?? e)
  }
  renderDetail()
}

async function loadLog() {
  const log = state.log
  if (log === undefined) return
  const path = `${API}/jobs/${log.job}/tasks/${encodeURIComponent(log.key)}/attempts/${log.attempt}/log`
  try {
    const text = await api(path)
    if (state.log !== log) return
    log.text = typeof text === "string" ? text : JSON.stringify(text, null, 2)
    log.error = undefined
  } catch (e) {
    if (state.log !== log) return
    log.error = String(e.message ?? e)
  }
  renderLog()
}

async function loadPipelines() {
  let page
  try {
    page = await api(`${API}/pipelines?limit=${PIPELINE_LIMIT}`)
  } catch (e) {
    if (!(e instanceof HttpError) || e.status === 401) throw e
    state.pipelinesNote = e.status === 403
      ? "Pipeline runs need a token without score or player limits."
      : e.status === 404 ? "This conductor does not serve pipeline runs." : `Cannot read pipeline runs: ${e.message}`
    renderPipelines()
    return
  }
  state.pipelinesNote = undefined
  const next = new Map()
  for (const r of page.runs) {
    const known = state.pipelines.get(r.id)
    const final = known !== undefined && known.state !== "PENDING" && r.state === "PENDING"
    next.set(r.id, final ? known : { ...r, jobs: known?.jobs })
  }
  for (const [id, r] of state.pipelines) if (!next.has(id) && id > (page.runs[0]?.id ?? 0)) next.set(id, r)
  state.pipelines = next
  renderPipelines()
  // the jobs of runs still going (the list has no jobs): read them once
  for (const r of next.values()) if (r.jobs === undefined && r.state === "PENDING") loadRunJobs(r.id)
}

/** One run's jobs for its row in the list. */
async function loadRunJobs(id) {
  try {
    const detail = await api(`${API}/pipelines/${id}`)
    const known = state.pipelines.get(id)
    if (known !== undefined) state.pipelines.set(id, { ...known, state: known.state !== "PENDING" ? known.state : detail.state, jobs: detail.jobs })
    renderPipelines()
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 401)) console.warn(`reading pipeline run ${id}:`, e)
  }
}

async function loadRun() {
  const id = state.run
  if (id === undefined) return
  try {
    const detail = await api(`${API}/pipelines/${id}`)
    if (state.run !== id) return
    state.runDetail = detail
    state.runError = undefined
    const known = state.pipelines.get(id)
    if (known !== undefined && !(known.state !== "PENDING" && detail.state === "PENDING")) {
      state.pipelines.set(id, { ...known, state: detail.state, finishedAt: detail.finishedAt, jobs: detail.jobs })
      renderPipelines()
    }
  } catch (e) {
    if (state.run !== id) return
    state.runDetail = undefined
    state.runError = e instanceof HttpError && e.status === 404
      ? `Pipeline run ${id} does not exist.`
      : e instanceof HttpError && e.status === 403 ? "Pipeline runs need a token without score or player limits." : String(e.message ?? e)
  }
  renderRun()
}

/**
 * Re-read a view soon: requests for the same view within REFRESH_DELAY_MS
 * become one read, and a view is never read twice at once (a request made
 * while it is being read reads it again afterwards).
 */
const loaders = {
  health: loadHealth,
  players: loadPlayers,
  jobs: loadJobs,
  pending: loadPending,
  scores: loadScores,
  detail: loadDetail,
  log: loadLog,
  pipelines: loadPipelines,
  run: loadRun
}
const refreshing = new Map()

function refresh(name) {
  let entry = refreshing.get(name)
  if (entry === undefined) {
    entry = { timer: undefined, running: false, again: false }
    refreshing.set(name, entry)
  }
  if (entry.running) {
    entry.again = true
    return
  }
  if (entry.timer !== undefined) return
  entry.timer = setTimeout(() => run(name, entry), REFRESH_DELAY_MS)
}

async function run(name, entry) {
  entry.timer = undefined
  entry.running = true
  try {
    await loaders[name]()
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 401)) console.warn(`reading ${name}:`, e)
  } finally {
    entry.running = false
    if (entry.again) {
      entry.again = false
      refresh(name)
    }
  }
}

// ---- the event stream ------------------------------------------------------------

function setLive(live) {
  state.live = live
  const el = $("live")
  el.dataset.state = live
  el.textContent = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", offline: "offline" }[live] ?? live
}

function closeEvents() {
  if (state.events !== undefined) {
    state.events.close()
    state.events = undefined
  }
}

function connectEvents() {
  closeEvents()
  const url = new URL(`${API}/events`, location.href)
  if (state.token !== "") url.searchParams.set("access_token", state.token)
  // A new EventSource starts with no Last-Event-ID: resume from ours.
  if (state.lastEventId !== undefined) url.searchParams.set("lastEventId", state.lastEventId)
  const es = new EventSource(url)
  state.events = es
  es.onopen = () => {
    if (state.events !== es) return
    setLive("live")
    if (state.stale) {
      state.stale = false
      for (const name of ALL_VIEWS) refresh(name)
    }
  }
  es.onerror = () => {
    if (state.events !== es) return
    if (es.readyState === EventSource.CLOSED) {
      // Refused (not a network error, which EventSource retries by itself):
      // find out why, then try again with a new stream.
      setLive("offline")
      state.events = undefined
      state.stale = true
      api(`${API}/players`).then(
        () => setTimeout(() => state.started && state.events === undefined && connectEvents(), RECONNECT_DELAY_MS),
        () => setTimeout(() => state.started && state.events === undefined && connectEvents(), RECONNECT_DELAY_MS)
      )
    } else {
      setLive("reconnecting")
    }
  }
  for (const type of EVENT_TYPES) es.addEventListener(type, onMessage)
  es.addEventListener("message", onMessage)
}

function onMessage(message) {
  if (message.lastEventId) state.lastEventId = message.lastEventId
  let event
  try {
    event = JSON.parse(message.data)
  } catch {
    return
  }
  if (typeof event !== "object" || event === null || typeof event.type !== "string") return
  apply(event)
}

/** Apply one audience event to the page. */
function apply(event) {
  switch (event.type) {
    case "job.submitted": {
      if (!state.jobs.has(event.job)) {
        state.jobs.set(event.job, {
          id: event.job,
          score: event.score,
          policy: event.policy,
          state: "PENDING",
          targets: event.targets,
          createdAt: event.at
        })
        trimJobs()
        renderJobs()
      }
      refresh("pending")
      refresh("health")
      break
    }
    case "job.finished": {
      const job = state.jobs.get(event.job)
      if (job !== undefined) {
        state.jobs.set(event.job, { ...job, state: event.state, finishedAt: event.at })
        renderJobs()
      } else {
        refresh("jobs")
      }
      if (state.selected === event.job) refresh("detail")
      refresh("pending")
      refresh("health")
      break
    }
    case "task.dispatched":
    case "task.started":
    case "task.finished": {
      const job = state.jobs.get(event.job)
      if (job !== undefined) {
        const progress = { ...(job.progress ?? {}) }
        progress[`${event.key}\u0000${event.player}`] = event.type === "task.finished" ? event.outcome : event.type === "task.started" ? "RUNNING" : "DISPATCHED"
        state.jobs.set(event.job, { ...job, progress })
        renderJobs()
      }
      if (state.selected === event.job) {
        refresh("detail")
        const log = state.log
        if (event.type === "task.finished" && log !== undefined && log.job === event.job && log.key === event.key && log.attempt === event.attempt) {
          refresh("log")
        }
      }
      refresh("players")
      refresh("health")
      break
    }
    case "player.connected":
    case "player.disconnected": {
      const p = state.players.find((x) => x.name === event.player)
      if (p !== undefined) {
        Object.assign(p, { online: event.type === "player.connected", lastSeen: event.at })
        if (event.type === "player.connected") p.slots = event.slots
        renderPlayers()
      }
      refresh("players")
      refresh("scores")
      break
    }
    case "pipeline.started": {
      if (!state.pipelines.has(event.run)) {
        state.pipelines.set(event.run, {
          id: event.run,
          pipeline: event.pipeline,
          state: "PENDING",
          createdAt: event.at,
          jobs: event.jobs.map((name) => ({ name, status: "waiting" }))
        })
        trimPipelines()
        renderPipelines()
      }
      break
    }
    case "pipeline.progressed": {
      const run = state.pipelines.get(event.run)
      if (run !== undefined && run.jobs !== undefined) {
        const jobs = run.jobs.map((j) =>
          j.name !== event.name
            ? j
            : { name: j.name, status: event.status, id: event.jobId ?? j.id, state: event.state ?? j.state, reason: event.reason ?? j.reason }
        )
        state.pipelines.set(event.run, { ...run, jobs })
        renderPipelines()
      } else if (run === undefined) {
        refresh("pipelines")
      }
      if (state.run === event.run) refresh("run")
      break
    }
    case "pipeline.finished": {
      const run = state.pipelines.get(event.run)
      if (run !== undefined) {
        state.pipelines.set(event.run, { ...run, state: event.state, finishedAt: event.at, reason: event.reason })
        renderPipelines()
      } else {
        refresh("pipelines")
      }
      if (state.run === event.run) refresh("run")
      break
    }
    case "reset": {
      for (const name of ALL_VIEWS) refresh(name)
      break
    }
    default:
      break
  }
}

function trimJobs() {
  const ids = [...state.jobs.keys()].sort((a, b) => b - a)
  for (const id of ids.slice(JOB_LIMIT)) if (id !== state.selected) state.jobs.delete(id)
}

function trimPipelines() {
  const ids = [...state.pipelines.keys()].sort((a, b) => b - a)
  for (const id of ids.slice(PIPELINE_LIMIT)) if (id !== state.run) state.pipelines.delete(id)
}

// ---- rendering -------------------------------------------------------------------

function renderQueue() {
  $("queue-waiting").textContent = state.health === undefined ? "–" : String(state.health.queued)
  $("queue-running").textContent = state.playerSummary === undefined ? "–" : String(state.playerSummary.running)
  $("queue-pending").textContent = state.pendingJobs === undefined ? "–" : `${state.pendingJobs}${state.pendingMore ? "+" : ""}`
  const s = state.playerSummary
  $("players-online").textContent = s === undefined ? "–" : `${s.online} / ${s.total}`
}

function renderPlayers() {
  const rows = state.players.map((p) =>
    h(
      "tr",
      { dataset: { player: p.name }, title: p.address ? `${p.name} at ${p.address}` : p.name },
      h("td", {}, h("button", { type: "button", class: "link", title: "add to the submit form", onclick: () => addTarget(p.name) }, p.name)),
      h("td", { class: "state" }, badge(p.online ? "online" : "offline"), p.allowlisted ? null : h("span", { class: "muted" }, " not allowlisted")),
      h("td", { class: "num" }, String(p.slots)),
      h("td", { class: "num" }, String(p.running)),
      h("td", { class: "wrap" }, Object.entries(p.labels ?? {}).map(([k, v]) => h("span", { class: "label" }, `${k}=${v}`))),
      h("td", {}, p.online ? "now" : p.lastSeen === undefined ? h("span", { class: "muted" }, "never") : age(p.lastSeen))
    )
  )
  replaceBody($("players"), rows.length > 0 ? rows : [emptyRow(6, "no players")])
}

function progressText(job) {
  const total = job.targets.length
  if (job.progress === undefined) return `${total}`
  const done = Object.values(job.progress).filter((v) => v !== "DISPATCHED" && v !== "RUNNING").length
  return job.state === "PENDING" ? `${done}/${total}` : `${total}`
}

function renderJobs() {
  const jobs = [...state.jobs.values()].sort((a, b) => b.id - a.id)
  const rows = jobs.map((j) =>
    h(
      "tr",
      { dataset: { job: j.id }, class: j.id === state.selected ? "selected" : undefined, tabindex: 0 },
      h("td", { class: "num" }, String(j.id)),
      h("td", {}, j.score),
      h("td", {}, j.policy),
      h("td", { title: j.targets.join(", ") }, progressText(j)),
      h("td", { class: "state" }, badge(j.state)),
      h("td", {}, age(j.createdAt, ""))
    )
  )
  replaceBody($("jobs"), rows.length > 0 ? rows : [emptyRow(6, "no jobs yet")])
}

function onJobsClick(e) {
  const row = e.target instanceof Element ? e.target.closest("tr[data-job]") : null
  if (row === null) return
  select(Number(row.dataset.job))
}

function onJobsKey(e) {
  if (e.key !== "Enter" && e.key !== " ") return
  onJobsClick(e)
}

function select(id) {
  if (state.selected !== id) {
    state.selected = id
    state.detail = undefined
    state.detailError = undefined
    state.log = undefined
    renderLog()
  }
  location.hash = `job-${id}`
  renderJobs()
  renderDetail()
  refresh("detail")
}

/** Where a player stands in the job: its attempt's phase or outcome. */
function phase(attempt, jobState) {
  if (attempt === undefined) return jobState === "PENDING" ? "WAITING" : "NOT_RUN"
  if (attempt.outcome !== undefined) return attempt.outcome
  if (attempt.startedAt !== undefined) return "RUNNING"
  return "DISPATCHED"
}

function renderDetail() {
  const panel = $("job-panel")
  const id = state.selected
  if (id === undefined) {
    panel.hidden = true
    return
  }
  panel.hidden = false
  $("job-title").textContent = `Job ${id}`
  const summary = $("job-summary")
  const d = state.detail
  if (d === undefined) {
    summary.replaceChildren(h("span", { class: state.detailError ? "error" : "muted" }, state.detailError ?? "loading…"))
    replaceBody($("tasks"), [])
    return
  }
  fill(
    summary,
    kv("state", badge(d.state)),
    kv("score", h("strong", {}, d.score)),
    kv("policy", d.policy),
    kv("created", fmtTime(d.createdAt), " (", age(d.createdAt), ")"),
    d.finishedAt !== undefined ? kv("took", fmtDuration(d.finishedAt - d.createdAt)) : null,
    kv("players", String(d.targets.length)),
    kv("params", h("code", {}, JSON.stringify(d.request?.params ?? {}))),
    d.state === "PENDING" ? h("button", { type: "button", class: "quiet", id: "cancel-job", onclick: () => cancel(d.id) }, "Cancel job") : null,
    d.reason ? h("span", { class: "reason muted" }, d.reason) : null
  )

  // One row per attempt, grouped by player (targets order, then any other
  // player that ran an attempt); players with no attempt get one row.
  const byPlayer = new Map(d.targets.map((t) => [t, []]))
  for (const a of d.attempts) {
    if (!byPlayer.has(a.player)) byPlayer.set(a.player, [])
    byPlayer.get(a.player).push(a)
  }
  const rows = []
  for (const [player, attempts] of byPlayer) {
    if (attempts.length === 0) {
      rows.push(
        h("tr", { dataset: { player, phase: phase(undefined, d.state) } }, h("td", {}, player), h("td", { class: "state" }, badge(phase(undefined, d.state))), h("td", { colspan: 6 }, ""))
      )
      continue
    }
    const latest = attempts.length - 1
    attempts.forEach((a, i) => {
      const p = phase(a, d.state)
      const isLog = state.log !== undefined && state.log.key === a.key && state.log.attempt === a.attempt && state.log.player === a.player
      rows.push(
        h(
          "tr",
          { dataset: { player, key: a.key, attempt: a.attempt, phase: p }, class: [i === latest ? "" : "muted", isLog ? "selected" : ""].join(" ").trim() || undefined },
          h("td", {}, i === 0 ? player : ""),
          h("td", { class: "state" }, badge(p)),
          h("td", { class: "num", title: `task ${a.key}` }, `${a.attempt}${attempts.length > 1 && i === latest ? ` of ${attempts.length}` : ""}`),
          h("td", {}, fmtTime(a.dispatchedAt)),
          h("td", {}, a.startedAt === undefined ? "–" : fmtTime(a.startedAt)),
          h("td", { class: "num" }, a.finishedAt !== undefined && a.startedAt !== undefined ? fmtDuration(a.finishedAt - a.startedAt) : a.startedAt !== undefined ? age(a.startedAt, "…") : "–"),
          h("td", {}, jsonBlock(a.response)),
          h("td", {}, h("button", { type: "button", class: "link", onclick: () => openLog(d.id, a) }, a.logBytes > 0 ? `log (${fmtBytes(a.logBytes)})` : "log"))
        )
      )
    })
  }
  replaceBody($("tasks"), rows.length > 0 ? rows : [emptyRow(8, "no players")])
}

/** A run's progress in the list: finished jobs out of all, or "–" before its jobs are known. */
function runProgress(run) {
  if (run.jobs === undefined) return "–"
  const done = run.jobs.filter((j) => j.status === "finished" || j.status === "skipped" || j.status === "failed").length
  return `${done}/${run.jobs.length}`
}

function renderPipelines() {
  const note = $("pipelines-note")
  note.textContent = state.pipelinesNote ?? ""
  note.hidden = state.pipelinesNote === undefined
  const runs = [...state.pipelines.values()].sort((a, b) => b.id - a.id)
  const rows = runs.map((r) =>
    h(
      "tr",
      { dataset: { run: r.id }, class: r.id === state.run ? "selected" : undefined, tabindex: 0 },
      h("td", { class: "num" }, String(r.id)),
      h("td", {}, r.pipeline),
      h("td", { class: "num", title: r.jobs?.map((j) => `${j.name}: ${j.status}`).join(", ") ?? "" }, runProgress(r)),
      h("td", { class: "state" }, badge(r.state)),
      h("td", {}, age(r.createdAt, ""))
    )
  )
  replaceBody($("pipelines"), rows.length > 0 ? rows : [emptyRow(5, state.pipelinesNote === undefined ? "no pipeline runs yet" : "–")])
}

function onPipelinesClick(e) {
  if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") return
  const row = e.target instanceof Element ? e.target.closest("tr[data-run]") : null
  if (row === null) return
  selectRun(Number(row.dataset.run))
}

function selectRun(id) {
  if (state.run !== id) {
    state.run = id
    state.runDetail = undefined
    state.runError = undefined
  }
  location.hash = `run-${id}`
  renderPipelines()
  renderRun()
  refresh("run")
}

/** How a job of a run stands: its job's state once finished, else its status. */
const runJobPhase = (j) => (j.state !== undefined ? j.state : j.status.toUpperCase())

function renderRun() {
  const panel = $("run-panel")
  const id = state.run
  if (id === undefined) {
    panel.hidden = true
    return
  }
  panel.hidden = false
  $("run-title").textContent = `Pipeline run ${id}`
  const summary = $("run-summary")
  const d = state.runDetail
  if (d === undefined) {
    summary.replaceChildren(h("span", { class: state.runError ? "error" : "muted" }, state.runError ?? "loading…"))
    replaceBody($("run-jobs"), [])
    return
  }
  fill(
    summary,
    kv("state", badge(d.state)),
    kv("pipeline", h("strong", {}, d.pipeline)),
    kv("file", d.file),
    kv("created", fmtTime(d.createdAt), " (", age(d.createdAt), ")"),
    d.finishedAt !== undefined ? kv("took", fmtDuration(d.finishedAt - d.createdAt)) : null,
    kv("params", h("code", {}, JSON.stringify(d.params ?? {}))),
    d.state === "PENDING" ? h("button", { type: "button", class: "quiet", id: "cancel-run", onclick: () => cancelRun(d.id) }, "Cancel run") : null,
    d.reason ? h("span", { class: "reason muted" }, d.reason) : null
  )
  const rows = d.jobs.map((j) =>
    h(
      "tr",
      { dataset: { name: j.name, status: j.status } },
      h("td", {}, j.name),
      h("td", { class: "state" }, badge(runJobPhase(j))),
      h("td", { class: "num" }, j.id === undefined ? "–" : h("button", { type: "button", class: "link", title: "open the job", onclick: () => select(j.id) }, `job ${j.id}`)),
      h("td", { class: "wrap" }, j.reason ?? "")
    )
  )
  replaceBody($("run-jobs"), rows.length > 0 ? rows : [emptyRow(4, "no jobs")])
}

async function cancelRun(id) {
  try {
    await api(`${API}/pipelines/${id}/cancel?reason=${encodeURIComponent("cancelled from the dashboard")}`, { method: "POST" })
  } catch (e) {
    showBanner(`Cancel pipeline run ${id}: ${e.message ?? e}`)
  }
  refresh("run")
}

function openLog(job, attempt) {
  state.log = { job, key: attempt.key, attempt: attempt.attempt, player: attempt.player }
  renderLog()
  renderDetail()
  refresh("log")
}

function renderLog() {
  const view = $("log-view")
  const log = state.log
  if (log === undefined) {
    view.hidden = true
    return
  }
  view.hidden = false
  $("log-title").textContent = `log of ${log.player}, task ${log.key}, attempt ${log.attempt}`
  const pre = $("log-text")
  pre.classList.toggle("error", log.error !== undefined)
  pre.textContent = log.error ?? (log.text === undefined ? "loading…" : log.text === "" ? "(empty)" : log.text)
}

async function cancel(id) {
  try {
    await api(`${API}/jobs/${id}/cancel?reason=${encodeURIComponent("cancelled from the dashboard")}`, { method: "POST" })
  } catch (e) {
    showBanner(`Cancel job ${id}: ${e.message ?? e}`)
  }
  refresh("detail")
}

// ---- submitting --------------------------------------------------------------------

function addTarget(name) {
  const input = /** @type {HTMLInputElement} */ ($("submit-players"))
  const names = splitNames(input.value)
  if (!names.includes(name)) names.push(name)
  input.value = names.join(", ")
}

const splitNames = (text) => text.split(/[\s,]+/).filter((s) => s !== "")

function parseJson(text, what, wantObject) {
  if (text.trim() === "") return { ok: true, value: undefined }
  try {
    const value = JSON.parse(text)
    if (wantObject && (typeof value !== "object" || value === null || Array.isArray(value))) {
      return { ok: false, error: `${what} must be a JSON object` }
    }
    return { ok: true, value }
  } catch (e) {
    return { ok: false, error: `${what} is not JSON: ${e.message}` }
  }
}

async function onSubmit(e) {
  e.preventDefault()
  const errors = []
  const score = /** @type {HTMLInputElement} */ ($("submit-score")).value.trim()
  const players = splitNames(/** @type {HTMLInputElement} */ ($("submit-players")).value)
  const policy = /** @type {HTMLSelectElement} */ ($("submit-policy")).value
  const options = parseJson(/** @type {HTMLInputElement} */ ($("submit-options")).value, "policy options", false)
  const params = parseJson(/** @type {HTMLTextAreaElement} */ ($("submit-params")).value, "params", true)
  if (score === "") errors.push("score: required")
  if (!options.ok) errors.push(options.error)
  if (!params.ok) errors.push(params.error)
  if (errors.length > 0) return showSubmitErrors(errors)
  const request = {
    score,
    players,
    policy: options.value === undefined ? { name: policy } : { name: policy, options: options.value },
    ...(params.value === undefined ? {} : { params: params.value })
  }
  const button = /** @type {HTMLButtonElement} */ ($("submit-button"))
  button.disabled = true
  $("submit-result").textContent = "submitting…"
  showSubmitErrors([])
  try {
    const reply = await api(`${API}/jobs`, { method: "POST", json: request })
    $("submit-result").textContent = reply.existing ? `job ${reply.id} (already submitted)` : `submitted job ${reply.id}`
    select(reply.id)
  } catch (err) {
    $("submit-result").textContent = ""
    const body = err instanceof HttpError ? err.body : undefined
    if (body && Array.isArray(body.issues) && body.issues.length > 0) {
      showSubmitErrors(body.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)))
    } else if (body && Array.isArray(body.scores) && (body.scores.length > 0 || body.players.length > 0)) {
      showSubmitErrors([body.message, ...body.scores.map((s) => `score not allowed: ${s}`), ...body.players.map((p) => `player not allowed: ${p}`)])
    } else {
      showSubmitErrors([err.message ?? String(err)])
    }
  } finally {
    button.disabled = false
  }
}

function showSubmitErrors(errors) {
  const ul = $("submit-errors")
  ul.replaceChildren(...errors.map((t) => h("li", {}, t)))
  ul.hidden = errors.length === 0
}

// ---- start ---------------------------------------------------------------------------

async function start() {
  state.started = true
  $("sign-out").hidden = state.token === ""
  setLive("connecting")
  try {
    // The newest event id first: the stream then resumes from it, so
    // nothing that happens while the views are read is missed.
    await loadHealth()
    state.lastEventId = state.health?.lastEventId
    await Promise.all([loadPlayers(), loadJobs(), loadPending(), loadScores(), loadPipelines()])
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) return
    console.warn("loading the dashboard:", e)
    state.stale = true
  }
  if (!state.started) return
  connectEvents()
  const m = /^#job-([0-9]+)$/.exec(location.hash)
  if (m !== null && state.selected === undefined) select(Number(m[1]))
  const r = /^#run-([0-9]+)$/.exec(location.hash)
  if (r !== null && state.run === undefined) selectRun(Number(r[1]))
}

function main() {
  $("login-form").addEventListener("submit", onLogin)
  $("login").addEventListener("cancel", (e) => e.preventDefault())
  $("sign-out").addEventListener("click", forgetToken)
  $("submit-form").addEventListener("submit", onSubmit)
  $("jobs").addEventListener("click", onJobsClick)
  $("jobs").addEventListener("keydown", onJobsKey)
  $("pipelines").addEventListener("click", onPipelinesClick)
  $("pipelines").addEventListener("keydown", onPipelinesClick)
  $("log-close").addEventListener("click", () => {
    state.log = undefined
    renderLog()
    renderDetail()
  })
  setInterval(tick, 1000)
  renderQueue()
  // Try without asking first: a token from this tab's session, or none if
  // the conductor needs none; a 401 opens the token dialog.
  start()
}

main()
