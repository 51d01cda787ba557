// The lorabridge console page: plain DOM, no framework. Tables come from the JSON API under
// /console/api/ (polled, and refreshed when the tail shows something relevant); the live tail is
// an MQTT-over-WebSocket subscription with a one-time secret minted for this session
// (docs/console.md). Everything from the network is put in the page as text, never as HTML.
'use strict'
;(() => {
  const REFRESH_MS = 5000
  const TAIL_MAX = 500
  const SVG = 'http://www.w3.org/2000/svg'

  // ------------------------------------------------------------------ helpers

  const $ = id => document.getElementById(id)

  function h (tag, attrs, ...children) {
    const el = document.createElement(tag)
    setAttrs(el, attrs)
    for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c))
    return el
  }

  function s (tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag)
    setAttrs(el, attrs)
    for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c))
    return el
  }

  function setAttrs (el, attrs) {
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (v === undefined || v === null || v === false) continue
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
      else el.setAttribute(k, v === true ? '' : String(v))
    }
  }

  function ago (iso) {
    if (iso === undefined) return '–'
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
    if (s < 60) return `${s} s ago`
    if (s < 3600) return `${Math.floor(s / 60)} min ago`
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`
    return `${Math.floor(s / 86400)} d ago`
  }

  const time = iso => h('span', { title: iso ?? '' }, ago(iso))
  const clock = d => d.toTimeString().slice(0, 8)
  const fmt = (n, unit) => n === undefined || n === null ? '–' : `${n}${unit ?? ''}`

  async function api (path, body) {
    const res = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    })
    if (res.status === 401) {
      // The session ended (logout elsewhere, expiry, the user lost the admin role): `/` shows the login.
      location.replace('/')
      throw new Error('session ended')
    }
    const text = await res.text()
    let data
    try { data = text === '' ? undefined : JSON.parse(text) } catch { data = undefined }
    if (!res.ok) throw Object.assign(new Error(data?.message ?? `${res.status} ${res.statusText}`), { code: data?.error, status: res.status })
    return data
  }

  function replaceRows (tbody, rows) {
    tbody.replaceChildren(...rows)
  }

  // ------------------------------------------------------------------ charts

  /** A bar chart of per-minute counts (oldest first) filling its container. */
  function barChart (values, opts = {}) {
    const w = opts.width ?? 600
    const hgt = opts.height ?? 120
    const axis = opts.axis !== false
    const left = axis ? 28 : 0
    const bottom = axis ? 16 : 0
    const max = Math.max(1, ...values)
    const bw = (w - left) / values.length
    const svg = s('svg', { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': opts.label ?? 'uplinks per minute' })
    values.forEach((v, i) => {
      if (v === 0) return
      const bh = Math.max(1.5, (v / max) * (hgt - bottom - 6))
      svg.append(s('rect', { class: i === values.length - 1 ? 'bar bar-now' : 'bar', x: (left + i * bw + bw * 0.12).toFixed(2), y: (hgt - bottom - bh).toFixed(2), width: (bw * 0.76).toFixed(2), height: bh.toFixed(2), rx: 1 },
        s('title', {}, `${values.length - 1 - i === 0 ? 'this minute' : `${values.length - 1 - i} min ago`}: ${v} uplink${v === 1 ? '' : 's'}`)))
    })
    if (axis) {
      svg.append(s('line', { class: 'axis', x1: left, y1: hgt - bottom, x2: w, y2: hgt - bottom }))
      svg.append(s('text', { class: 'axis-label', x: left - 4, y: 10, 'text-anchor': 'end' }, String(max)))
      svg.append(s('text', { class: 'axis-label', x: left - 4, y: hgt - bottom, 'text-anchor': 'end' }, '0'))
      svg.append(s('text', { class: 'axis-label', x: left, y: hgt - 3 }, '−60 min'))
      svg.append(s('text', { class: 'axis-label', x: left + (w - left) / 2, y: hgt - 3, 'text-anchor': 'middle' }, '−30 min'))
      svg.append(s('text', { class: 'axis-label', x: w, y: hgt - 3, 'text-anchor': 'end' }, 'now'))
    }
    return svg
  }

  // ------------------------------------------------------------------ tabs

  const TABS = ['gateways', 'devices', 'tail', 'rules', 'try']
  function showTab () {
    const name = TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'gateways'
    for (const a of document.querySelectorAll('.tabs a')) a.classList.toggle('active', a.dataset.tab === name)
    for (const p of document.querySelectorAll('[data-panel]')) p.hidden = p.dataset.panel !== name
    document.body.dataset.tab = name
    // What a tab shows is fetched again as it opens.
    if (name in loaders) refreshSoon(name)
  }
  window.addEventListener('hashchange', showTab)

  // ------------------------------------------------------------------ gateways

  async function loadGateways () {
    const { gateways } = await api('/console/api/gateways')
    const online = gateways.filter(g => g.online).length
    $('stat-gateways').replaceChildren(String(online), h('small', {}, ` / ${gateways.length}`))
    $('gateways-empty').hidden = gateways.length > 0
    $('gateways-note').textContent = gateways.length > 0 ? `${online} of ${gateways.length} online` : ''
    replaceRows($('gateways'), gateways.map(g => h('tr', { 'data-gateway': g.id },
      h('td', {}, g.online ? h('span', { class: 'badge ok' }, 'Online') : h('span', { class: 'badge bad', title: g.reason ?? '' }, `Offline${g.reason ? ` (${g.reason})` : ''}`)),
      h('td', { class: 'mono' }, g.id),
      h('td', {}, g.network ?? '–'),
      h('td', {}, g.network === 'multitech' ? `app-connect ${g.protocol ?? '?'} ` : `${g.protocol ?? '–'} `, g.transport ? h('span', { class: 'tag', title: 'transport' }, g.transport) : ''),
      h('td', { class: 'mono' }, (g.gatewayEuis ?? []).join(', ') || '–'),
      h('td', {}, time(g.since)),
      h('td', {}, time(g.lastSeen)),
    )))
  }

  // ------------------------------------------------------------------ devices

  function signalClass (rssi) {
    if (rssi === undefined) return ''
    return rssi >= -90 ? 'signal-good' : rssi >= -110 ? 'signal-fair' : 'signal-poor'
  }

  function routeText (d) {
    const r = d.route
    if (r === undefined) return d.gateway ?? '–'
    if (r.network === 'thingpark') return h('span', {}, h('span', { class: 'tag' }, 'thingpark'), r.connection)
    return h('span', { title: `app-connect ${r.protocol} over ${r.transport}` }, h('span', { class: 'tag' }, r.transport), h('span', { class: 'mono' }, r.gateway))
  }

  /** The last uplink's decoded values, compact (all of it in the tooltip); or why its decoder failed. */
  function decodedCell (d) {
    if (d.decodeErrors !== undefined && d.decodeErrors.length > 0) return h('td', { class: 'decoded signal-poor', title: d.decodeErrors.join('\n') }, `decoder failed: ${d.decodeErrors[0]}`)
    if (d.decoded === undefined) return h('td', { class: 'decoded muted' }, '–')
    const text = typeof d.decoded === 'object' && d.decoded !== null && !Array.isArray(d.decoded)
      ? Object.entries(d.decoded).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')
      : JSON.stringify(d.decoded)
    return h('td', { class: 'decoded mono', title: JSON.stringify(d.decoded, null, 2) }, text.length > 120 ? text.slice(0, 119) + '…' : text)
  }

  /** The device's pending downlinks: how many, and which wait for an ACK (all of them in the tooltip). */
  function pendingCell (d) {
    const list = d.pending ?? []
    if (list.length === 0) return h('td', { class: 'pending muted' }, '–')
    const acking = list.filter(p => p.state === 'awaiting-ack').length
    const title = list.map(p => `${p.id}: ${p.state}${p.confirmed ? ', confirmed' : ''}${p.size !== undefined ? `, ${p.size} bytes` : ''}${p.fPort !== undefined ? ` on fPort ${p.fPort}` : ''}${p.expiresAt !== undefined ? `, expires ${p.expiresAt}` : ''}`).join('\n')
    return h('td', { class: 'pending', title }, `${list.length} pending${acking > 0 ? ` (${acking} awaiting ACK)` : ''}`)
  }

  const seenUplinks = new Map()
  async function loadDevices () {
    const { devices, rate, count } = await api('/console/api/devices')
    const hour = rate.reduce((a, b) => a + b, 0)
    $('stat-devices').textContent = String(count)
    $('stat-uplinks').textContent = String(hour)
    $('stat-spark').replaceChildren(barChart(rate, { width: 140, height: 36, axis: false }))
    $('rate-chart').replaceChildren(barChart(rate, { width: 1000, height: 130 }))
    $('overview-chart').replaceChildren(barChart(rate, { width: 560, height: 170 }))
    $('devices-empty').hidden = devices.length > 0
    replaceRows($('devices'), devices.map(d => {
      const fresh = seenUplinks.has(d.devEui) && seenUplinks.get(d.devEui) !== d.lastUplink
      seenUplinks.set(d.devEui, d.lastUplink)
      return h('tr', { 'data-deveui': d.devEui, class: fresh ? 'flash' : undefined },
        h('td', { class: 'mono' }, d.devEui),
        h('td', {}, d.app),
        h('td', {}, time(d.lastUplink ?? d.lastJoin)),
        h('td', {}, routeText(d)),
        h('td', { class: `num ${signalClass(d.rssi)}` }, fmt(d.rssi, ' dBm')),
        h('td', { class: 'num' }, fmt(d.snr, ' dB')),
        h('td', { class: 'num' }, fmt(d.fCnt)),
        h('td', { class: 'num' }, fmt(d.fPort)),
        h('td', { class: 'num' }, String(d.uplinks)),
        decodedCell(d),
        pendingCell(d),
        h('td', {}, h('div', { class: 'rowspark' }, barChart(d.rate, { width: 120, height: 22, axis: false, label: `uplinks per minute of ${d.devEui}` }))),
      )
    }))
  }

  // ------------------------------------------------------------------ rules

  async function loadRules () {
    const st = await api('/console/api/rules')
    const errors = st.files.flatMap(f => f.errors ?? [])
    $('rules-dir').textContent = st.dir
    $('stat-rules').replaceChildren(String(st.rules.length), errors.length > 0 ? h('small', { class: 'signal-poor' }, ` · ${errors.length} error${errors.length === 1 ? '' : 's'}`) : h('small', {}, ` · ${st.decoders.length} decoder${st.decoders.length === 1 ? '' : 's'}`))
    $('rules-errors').hidden = errors.length === 0
    $('rules-errors').textContent = String(errors.length)
    $('rules-empty').hidden = st.rules.length > 0
    replaceRows($('rule-files'), st.files.map(f => h('tr', {},
      h('td', { class: 'mono' }, f.file),
      h('td', {}, f.ok ? h('span', { class: 'badge ok' }, 'loaded') : h('span', { class: 'badge bad' }, f.rules.length + f.decoders.length > 0 ? 'error — previous version runs' : 'error')),
      h('td', {}, f.rules.join(', ') || '–'),
      h('td', {}, f.decoders.join(', ') || '–'),
      h('td', {}, time(f.loadedAt)),
    )))
    $('rule-errors-box').hidden = errors.length === 0
    $('rule-errors').replaceChildren(...errors.map(e => h('li', {},
      h('span', { class: 'where' }, `${e.file}:${e.line}:${e.column}`),
      h('span', { class: 'tag' }, e.code), e.path ? h('span', { class: 'tag' }, e.path) : '',
      ' ', e.message, e.jsonata?.token ? h('span', { class: 'muted' }, ` (token “${e.jsonata.token}”)`) : '',
    )))
    const c = name => r => h('td', { class: 'num' }, String(r.counters[name] ?? 0))
    replaceRows($('rule-counters'), st.rules.map(r => h('tr', {},
      h('td', {}, h('strong', {}, r.name)), h('td', { class: 'mono' }, r.file), h('td', {}, r.on.map(k => h('span', { class: 'tag' }, k))),
      ...['matched', 'passed', 'failed', 'noResult', 'suppressed', 'actionsOk', 'actionsFailed'].map(k => c(k)(r)),
    )))
  }

  // ------------------------------------------------------------------ refresh

  const loaders = { gateways: loadGateways, devices: loadDevices, rules: loadRules }
  const pending = new Set()
  let refreshTimer
  /** Coalesces refreshes asked for by the tail into one round of requests. */
  function refreshSoon (...what) {
    for (const w of what) pending.add(w)
    if (refreshTimer !== undefined) return
    refreshTimer = setTimeout(() => {
      refreshTimer = undefined
      const now = [...pending]
      pending.clear()
      for (const w of now) loaders[w]().catch(err => { console.warn(`refresh ${w}`, err) })
    }, 250)
  }
  setInterval(() => refreshSoon('gateways', 'devices', 'rules'), REFRESH_MS)
  // Relative times move on between refreshes too.
  setInterval(() => { for (const el of document.querySelectorAll('span[title]')) if (/^\d{4}-/.test(el.title)) el.textContent = ago(el.title) }, 1000)

  // ------------------------------------------------------------------ live tail

  let root = 'lorabridge'
  let paused = false
  let tailCount = 0
  let lastUplink
  const decoder = new TextDecoder()

  function kindOf (topic) {
    const l = topic.split('/')
    if (l[1] === 'gateways') return ['gateway', 'kind-gateway']
    if (l[1] === '_bridge') return [l.slice(2).join('/') || 'bridge', 'kind-bridge']
    if (l[2] === 'devices') {
      const k = l.slice(4).join('/')
      return [k, k === 'up' ? 'kind-up' : k === 'join' ? 'kind-join' : k === 'down/failed' ? 'kind-failed' : k.startsWith('down') || k === 'clear' ? 'kind-down' : '']
    }
    return ['other', '']
  }

  function summary (topic, body) {
    if (body === null || typeof body !== 'object') return String(body)
    const [kind] = kindOf(topic)
    if (kind === 'up') {
      const best = (body.gateways ?? []).slice().sort((a, b) => (b.snr ?? -999) - (a.snr ?? -999))[0]
      return [`devEui ${body.devEui}`, `fPort ${body.fPort ?? '–'}`, `fCnt ${body.fCnt ?? '–'}`, best ? `RSSI ${best.rssi} dBm SNR ${best.snr} dB` : '', body.decoded !== undefined ? `decoded ${JSON.stringify(body.decoded)}` : `hex ${body.hex}`].filter(Boolean).join(' · ')
    }
    if (kind === 'gateway') return `${body.online ? 'online' : `offline${body.reason ? ` (${body.reason})` : ''}`} · ${body.network ?? ''} ${body.protocol ?? ''} ${body.transport ?? ''}`
    if (kind === 'rules') return `${(body.rules ?? []).length} rules, ${(body.files ?? []).filter(f => !f.ok).length} files with errors`
    return JSON.stringify(body)
  }

  function onMessage (topic, payload, retained) {
    const text = decoder.decode(payload)
    let body
    try { body = JSON.parse(text) } catch { body = text }
    const [kind, kindClass] = kindOf(topic)
    if (kind === 'up' && typeof body === 'object') lastUplink = body
    if (kind === 'gateway') refreshSoon('gateways')
    if (kind === 'up' || kind === 'join') refreshSoon('devices')
    if (topic === `${root}/_bridge/rules`) refreshSoon('rules')
    if (!retained) addRecent(topic, body, kind, kindClass)
    if (paused) return
    const item = h('li', { class: 'new', 'data-topic': topic, title: retained ? 'retained' : undefined, onclick: () => {
      const open = item.querySelector('pre')
      if (open) { open.remove(); return }
      item.append(h('pre', {}, typeof body === 'object' ? JSON.stringify(body, null, 2) : text))
    } },
    h('span', { class: 't' }, clock(new Date())),
    h('span', {}, h('span', { class: `kind ${kindClass}` }, kind)),
    h('span', { class: 'topic' }, topic, retained ? h('span', { class: 'muted' }, ' (retained)') : ''),
    h('span', { class: 'sum' }, summary(topic, body)))
    applyFilter(item)
    const tail = $('tail')
    tail.prepend(item)
    while (tail.childElementCount > TAIL_MAX) tail.lastElementChild.remove()
    $('tail-count').textContent = String(++tailCount)
  }

  /** The overview's short list: the newest device events and status changes. */
  function addRecent (topic, body, kind, kindClass) {
    if (kind === 'rules') return
    const l = topic.split('/')
    const who = l[2] === 'devices' ? `${l[3]} (${l[1]})` : l[1] === 'gateways' ? l[2] : topic
    const detail = kind === 'up' && typeof body === 'object'
      ? [`fPort ${body.fPort ?? '–'}`, body.decoded !== undefined ? JSON.stringify(body.decoded) : `hex ${body.hex}`].join(' · ')
      : kind === 'gateway' && typeof body === 'object' ? (body.online ? 'online' : `offline (${body.reason ?? '?'})`)
        : typeof body === 'object' && body !== null && 'reason' in body ? String(body.reason) : ''
    const list = $('recent')
    list.prepend(h('li', {}, h('span', { class: 't' }, clock(new Date())), h('span', {}, h('span', { class: `kind ${kindClass}` }, kind)),
      h('span', { class: 'what', title: topic }, h('span', { class: 'mono' }, who), detail ? h('span', { class: 'muted' }, ` ${detail}`) : '')))
    while (list.childElementCount > 9) list.lastElementChild.remove()
    $('recent-empty').hidden = true
  }

  function applyFilter (li) {
    const f = $('tail-filter').value.trim().toLowerCase()
    li.hidden = f !== '' && !li.textContent.toLowerCase().includes(f)
  }

  $('tail-filter').addEventListener('input', () => { for (const li of $('tail').children) applyFilter(li) })
  $('tail-pause').addEventListener('click', e => { paused = !paused; e.target.textContent = paused ? 'Resume' : 'Pause' })
  $('tail-clear').addEventListener('click', () => { $('tail').replaceChildren(); tailCount = 0; $('tail-count').textContent = '0' })

  function setLive (state, text) {
    const el = $('live')
    el.className = `live ${state}`
    el.textContent = text
  }

  let client
  let retry
  /** One MQTT connection at a time; each attempt uses a fresh one-time secret. */
  async function connectTail () {
    clearTimeout(retry)
    let cred
    try {
      cred = await api('/console/api/mqtt-token', {})
    } catch (err) {
      setLive('off', 'tail offline')
      retry = setTimeout(connectTail, 5000)
      return
    }
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${cred.path}`
    const c = window.mqtt.connect(url, {
      username: cred.username,
      password: cred.password,
      clientId: `lorabridge-console-${Math.random().toString(16).slice(2, 10)}`,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    })
    client = c
    c.on('connect', () => {
      setLive('on', 'live')
      c.subscribe(`${root}/#`, { qos: 0 })
    })
    c.on('message', (topic, payload, packet) => { onMessage(topic, payload, packet.retain) })
    let closed = false
    c.on('close', () => {
      if (closed) return
      closed = true
      setLive('off', 'tail offline')
      c.end(true)
      if (client === c) retry = setTimeout(connectTail, 3000)
    })
    c.on('error', err => { console.warn('tail', err.message) })
  }

  // ------------------------------------------------------------------ try it

  const SAMPLE = {
    id: 'try-1',
    app: 'default',
    devEui: '0080000000015834',
    receivedAt: new Date().toISOString(),
    network: { type: 'multitech', transport: 'mqtt', protocol: '1.1' },
    fPort: 2,
    fCnt: 7,
    data: 'Ugzk9v8A',
    hex: '520ce4f6ff00',
    gateways: [{ id: '029998e0-6156-cdd4-4523-264b523115c1', rssi: -71, snr: 9.5 }],
  }

  function jsonBlock (v) { return h('pre', {}, JSON.stringify(v, null, 2)) }

  function renderResult (r) {
    const out = $('try-result')
    const failed = r.deadLetters ?? []
    const byRule = new Map((r.rules ?? []).map(x => [x.rule, x]))
    out.replaceChildren(...[
      h('h4', {}, 'Rules'),
      h('div', { class: 'chips' }, r.matched.length === 0 ? h('span', { class: 'muted' }, 'no rule matches this event') : r.matched.map(name => {
        const res = byRule.get(name)
        return h('span', { class: `chip ${res?.passed ? 'on' : 'off'}`, title: res?.passed ? 'condition passed' : 'condition did not pass' }, name)
      })),
      r.decoder !== undefined ? [h('h4', {}, `Decoded by ${r.decoder}${r.codec !== undefined ? ` (codec ${r.codec})` : ''}`), r.decoded !== undefined ? jsonBlock(r.decoded) : '',
        r.decodeWarnings !== undefined ? h('ul', { class: 'warnings', id: 'try-decode-warnings' }, r.decodeWarnings.map(w => h('li', {}, w))) : '',
        r.decodeErrors !== undefined ? h('ul', { class: 'errors', id: 'try-decode-errors' }, r.decodeErrors.map(w => h('li', {}, w))) : ''] : '',
      h('h4', {}, `Downlinks (${r.downlinks.length})`),
      r.downlinks.length === 0 ? h('p', { class: 'muted' }, 'none') : h('table', { class: 'grid', id: 'try-downlinks' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'App'), h('th', {}, 'fPort'), h('th', {}, 'Payload'), h('th', {}, 'Request id'))),
        h('tbody', {}, r.downlinks.map(d => h('tr', {},
          h('td', { class: 'mono' }, d.devEui), h('td', {}, d.app), h('td', {}, String(d.request.fPort ?? '–')),
          h('td', { class: 'mono' }, d.request.hex ?? d.request.data ?? '–'), h('td', { class: 'mono small' }, d.request.id ?? '–'))))),
      h('h4', {}, `Publications (${r.publications.length})`),
      r.publications.length === 0 ? h('p', { class: 'muted' }, 'none') : r.publications.map(p => h('div', {}, h('div', { class: 'mono' }, p.topic, h('span', { class: 'muted' }, ` qos ${p.qos}${p.retain ? ', retained' : ''}`)), jsonBlock(p.payload))),
      failed.length > 0 ? [h('h4', { class: 'signal-poor' }, `Errors (${failed.length})`), h('ul', { class: 'errors' }, failed.map(d => h('li', {}, h('span', { class: 'where' }, `${d.rule} · ${d.stage}`), h('span', { class: 'tag' }, d.code), ' ', d.message)))] : '',
      h('details', {}, h('summary', {}, 'Full result (JSON)'), jsonBlock(r)),
    ].flat(Infinity).filter(x => x !== ''))
  }

  $('try-event').value = JSON.stringify(SAMPLE, null, 2)
  $('try-format').addEventListener('click', () => {
    try { $('try-event').value = JSON.stringify(JSON.parse($('try-event').value), null, 2) } catch { /* left as typed */ }
  })
  $('try-last').addEventListener('click', () => {
    if (lastUplink === undefined) { $('try-result').replaceChildren(h('p', { class: 'muted' }, 'No uplink in the tail yet.')); return }
    $('try-on').value = 'up'
    $('try-event').value = JSON.stringify(lastUplink, null, 2)
  })
  $('try-form').addEventListener('submit', async e => {
    e.preventDefault()
    const run = $('try-run')
    run.disabled = true
    let event
    try {
      event = JSON.parse($('try-event').value)
    } catch (err) {
      $('try-result').replaceChildren(h('p', { class: 'error' }, `The event is not valid JSON: ${err.message}`))
      run.disabled = false
      return
    }
    try {
      renderResult(await api('/console/api/rules/try', { on: $('try-on').value, event }))
    } catch (err) {
      $('try-result').replaceChildren(h('p', { class: 'error' }, `${err.code ? `${err.code}: ` : ''}${err.message}`))
    }
    run.disabled = false
  })

  // ------------------------------------------------------------------ start

  $('logout').addEventListener('click', async () => {
    client?.end(true)
    client = undefined
    await api('/console/api/logout', {}).catch(() => {})
    location.replace('/')
  })

  async function main () {
    showTab()
    const session = await api('/console/api/session')
    root = session.topicRoot
    $('user').textContent = session.user
    await Promise.all([loadGateways(), loadDevices(), loadRules()]).catch(err => { console.warn(err) })
    await connectTail()
  }
  main().catch(err => { console.error(err) })
})()
