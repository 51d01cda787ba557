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
    if (!res.ok) throw Object.assign(new Error(data?.message ?? `${res.status} ${res.statusText}`), { code: data?.error, field: data?.field, status: res.status })
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
  /** `#/devices/{app}/{devEui}`: a device's page. */
  function devicePath () {
    const m = /^#\/devices\/([^/]+)\/([^/]+)$/.exec(location.hash)
    if (m === null) return undefined
    try { return { app: decodeURIComponent(m[1]), devEui: decodeURIComponent(m[2]) } } catch { return undefined }
  }
  const deviceHref = (app, devEui) => `#/devices/${encodeURIComponent(app)}/${encodeURIComponent(devEui)}`
  function showTab () {
    const name = devicePath() !== undefined ? 'device' : TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'gateways'
    for (const a of document.querySelectorAll('.tabs a')) a.classList.toggle('active', a.dataset.tab === (name === 'device' ? 'devices' : name))
    for (const p of document.querySelectorAll('[data-panel]')) p.hidden = p.dataset.panel !== name
    document.body.dataset.tab = name
    openDevice(name === 'device' ? devicePath() : undefined)
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
        h('td', { class: 'mono' }, h('a', { href: deviceHref(d.app, d.devEui), class: 'device-link' }, d.devEui)),
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

  // ------------------------------------------------------------------ a device's page

  /** The device whose page is open (`#/devices/{app}/{devEui}`), while it is. */
  let pageDevice

  /** RSSI (left axis) and SNR (right axis) of each uplink's best reception over the window. */
  function signalChart (uplinks) {
    const points = uplinks.map(u => {
      const best = (u.gateways ?? []).slice().sort((a, b) => (b.snr ?? -999) - (a.snr ?? -999))[0]
      return { t: Date.parse(u.at), rssi: best?.rssi, snr: best?.snr, fCnt: u.fCnt }
    }).filter(p => Number.isFinite(p.t) && (p.rssi !== undefined || p.snr !== undefined)).sort((a, b) => a.t - b.t)
    const w = 600
    const hgt = 170
    const left = 42
    const right = 36
    const top = 10
    const bottom = 22
    const svg = s('svg', { viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': `signal of the last ${points.length} uplinks`, id: 'signal-svg' })
    if (points.length === 0) {
      svg.append(s('text', { class: 'axis-label', x: w / 2, y: hgt / 2, 'text-anchor': 'middle' }, 'no signal in the window'))
      return svg
    }
    const t0 = points[0].t
    const t1 = Math.max(points[points.length - 1].t, t0 + 1)
    const x = t => points.length === 1 ? left + (w - left - right) / 2 : left + (t - t0) / (t1 - t0) * (w - left - right)
    const range = (vals, pad) => {
      const v = vals.filter(n => n !== undefined)
      if (v.length === 0) return [0, 1]
      return [Math.floor(Math.min(...v) - pad), Math.ceil(Math.max(...v) + pad)]
    }
    const [rMin, rMax] = range(points.map(p => p.rssi), 3)
    const [sMin, sMax] = range(points.map(p => p.snr), 1)
    const yR = v => top + (rMax - v) / (rMax - rMin) * (hgt - top - bottom)
    const yS = v => top + (sMax - v) / (sMax - sMin) * (hgt - top - bottom)
    svg.append(s('line', { class: 'axis', x1: left, y1: hgt - bottom, x2: w - right, y2: hgt - bottom }))
    svg.append(s('text', { class: 'axis-label rssi-label', x: left - 4, y: top + 8, 'text-anchor': 'end' }, `${rMax}`))
    svg.append(s('text', { class: 'axis-label rssi-label', x: left - 4, y: hgt - bottom, 'text-anchor': 'end' }, `${rMin}`))
    svg.append(s('text', { class: 'axis-label snr-label', x: w - right + 4, y: top + 8 }, `${sMax}`))
    svg.append(s('text', { class: 'axis-label snr-label', x: w - right + 4, y: hgt - bottom }, `${sMin}`))
    svg.append(s('text', { class: 'axis-label rssi-label', x: left, y: hgt - 6 }, 'RSSI dBm'))
    svg.append(s('text', { class: 'axis-label snr-label', x: w - right, y: hgt - 6, 'text-anchor': 'end' }, 'SNR dB'))
    svg.append(s('text', { class: 'axis-label', x: (w - right + left) / 2, y: hgt - 6, 'text-anchor': 'middle' }, `${new Date(t0).toLocaleTimeString()} – ${new Date(t1).toLocaleTimeString()}`))
    const line = (key, y, cls) => {
      const pts = points.filter(p => p[key] !== undefined)
      if (pts.length > 1) svg.append(s('polyline', { class: `series ${cls}`, points: pts.map(p => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ') }))
      for (const p of pts) svg.append(s('circle', { class: `dot ${cls}`, cx: x(p.t).toFixed(1), cy: y(p[key]).toFixed(1), r: 3 }, s('title', {}, `fCnt ${p.fCnt ?? '–'}: ${key === 'rssi' ? `RSSI ${p.rssi} dBm` : `SNR ${p.snr} dB`}`)))
    }
    line('rssi', yR, 'rssi')
    line('snr', yS, 'snr')
    return svg
  }

  function decodedText (u) {
    if (u.decodeErrors !== undefined && u.decodeErrors.length > 0) return h('span', { class: 'signal-poor' }, `decoder failed: ${u.decodeErrors.join('; ')}`)
    if (u.decodedTooLarge) return h('span', { class: 'muted' }, 'decoded (too large to keep)')
    if (u.decoded === undefined) return h('span', { class: 'muted' }, '–')
    const text = typeof u.decoded === 'object' && u.decoded !== null && !Array.isArray(u.decoded)
      ? Object.entries(u.decoded).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' · ')
      : JSON.stringify(u.decoded)
    return h('span', { title: JSON.stringify(u.decoded, null, 2) }, text)
  }

  const OUTCOME_CLASS = { queued: 'idle', sent: 'idle', acked: 'ok', failed: 'bad', requested: 'idle' }

  function outcomeBadge (o) {
    const state = o.kind.slice(5)
    const text = state === 'failed' ? `failed: ${o.reason ?? '?'}` : state === 'acked' && o.ackedBy?.fCnt !== undefined ? `acked (fCnt ${o.ackedBy.fCnt})` : state
    const why = [o.detail, ...(o.caveats ?? []), ...(o.codecErrors ?? [])].filter(Boolean).join('\n')
    return h('span', { class: `badge ${OUTCOME_CLASS[state] ?? 'idle'} outcome outcome-${state}`, title: `${state} at ${new Date(o.at).toLocaleString()}${why ? `\n${why}` : ''}` }, text)
  }

  function renderDevice (d) {
    $('device-eui').textContent = d.devEui
    $('device-app').textContent = d.app
    const v = d.device ?? {}
    const r = d.route
    const fact = (label, value, cls) => h('div', { class: 'fact' }, h('div', { class: 'stat-label' }, label), h('div', { class: `fact-value ${cls ?? ''}` }, value))
    $('device-facts').replaceChildren(
      fact('Last uplink', time(v.lastUplink ?? d.uplinks[0]?.at)),
      fact('Route', r === undefined ? '–' : r.network === 'thingpark' ? `thingpark ${r.connection ?? ''}` : `${r.transport ?? ''} ${r.gateway ?? ''}`, 'mono'),
      fact('RSSI / SNR', `${fmt(v.rssi, ' dBm')} / ${fmt(v.snr, ' dB')}`, signalClass(v.rssi)),
      fact('fCnt', fmt(v.fCnt ?? d.uplinks[0]?.fCnt)),
      fact('Network', v.network ?? '–'),
    )
    const win = d.window
    $('signal-note').textContent = `best reception of each uplink, last ${d.uplinks.length}`
    $('signal-chart').replaceChildren(signalChart(d.uplinks))
    $('uplinks-note').textContent = `newest first; the last ${win.uplinks} within ${win.maxAgeHours} h are kept`
    $('downlinks-note').textContent = `newest first; the last ${win.downlinks} requests within ${win.maxAgeHours} h are kept`
    $('device-uplinks-empty').hidden = d.uplinks.length > 0
    replaceRows($('device-uplinks'), d.uplinks.map(u => h('tr', { 'data-uplink': u.id },
      h('td', { title: new Date(u.at).toLocaleString() }, clock(new Date(u.at))),
      h('td', { class: 'num' }, fmt(u.fCnt)),
      h('td', { class: 'num' }, fmt(u.fPort)),
      h('td', { class: 'mono payload' }, u.hex ?? '–', u.ack ? h('span', { class: 'tag', title: 'the frame acknowledges a confirmed downlink' }, 'ACK') : ''),
      h('td', { class: 'mono decoded-cell' }, decodedText(u)),
      h('td', { class: 'gateways' }, (u.gateways ?? []).map(g => h('div', { class: 'mono small' }, `${g.id} `, h('span', { class: signalClass(g.rssi) }, `${fmt(g.rssi, ' dBm')} / ${fmt(g.snr, ' dB')}`)))),
    )))
    const pending = d.pending ?? []
    $('device-pending').replaceChildren(...(pending.length === 0 ? [] : [h('span', { class: 'muted small' }, 'Pending: '), ...pending.map(p => h('span', { class: 'chip', title: `${p.state}${p.expiresAt ? `, expires ${p.expiresAt}` : ''}` }, `${p.id} · ${p.state}`))]))
    $('device-downlinks-empty').hidden = d.downlinks.length > 0
    replaceRows($('device-downlinks'), d.downlinks.map(g => h('tr', { 'data-request': g.id, 'data-state': g.state },
      h('td', { title: new Date(g.at).toLocaleString() }, clock(new Date(g.at))),
      h('td', { class: 'mono small' }, g.id),
      h('td', { class: 'mono' }, g.request === undefined ? h('span', { class: 'muted' }, '–') : [`fPort ${g.request.fPort ?? 'codec'} · `, payloadText(g.request), g.request.confirmed ? ' · confirmed' : '']),
      h('td', { class: 'outcomes' }, g.outcomes.length === 0 ? h('span', { class: 'badge idle' }, 'requested') : g.outcomes.map(outcomeBadge),
        g.outcomes.filter(o => o.detail).map(o => h('div', { class: 'small muted detail' }, o.detail))),
    )))
  }

  /** Called as the page opens (or leaves) a device: nothing of the previous device stays on it. */
  function openDevice (p) {
    const key = p === undefined ? undefined : `${p.app}/${p.devEui}`
    if (key !== openedKey) {
      for (const id of ['device-uplinks', 'device-downlinks', 'device-facts', 'signal-chart', 'device-pending']) $(id).replaceChildren()
      $('dl-result').textContent = ''
      delete $('dl-result').dataset.id
      openedKey = key
    }
    pageDevice = p
    if (p === undefined) return
    $('device-eui').textContent = p.devEui
    $('device-app').textContent = p.app
  }
  let openedKey

  async function loadDevice () {
    const p = devicePath()
    if (p === undefined) return
    let d
    try {
      d = await api(`/console/api/devices/${encodeURIComponent(p.app)}/${encodeURIComponent(p.devEui)}`)
    } catch (err) {
      $('device-error').hidden = false
      $('device-error').textContent = err.status === 404 ? `No device ${p.devEui} heard in application ${p.app} within the history window.` : `${err.code ? `${err.code}: ` : ''}${err.message}`
      $('device-body').hidden = true
      return
    }
    $('device-error').hidden = true
    $('device-body').hidden = false
    if (devicePath()?.devEui !== p.devEui || devicePath()?.app !== p.app) return
    // Normalized by the daemon (lower case, no separators): the tail and the links use that spelling.
    pageDevice = { app: d.app, devEui: d.devEui }
    renderDevice(d)
  }

  $('device-tail-link').addEventListener('click', () => {
    if (pageDevice === undefined) return
    $('tail-device').value = pageDevice.devEui
    if (![...$('tail-app').options].some(o => o.value === pageDevice.app)) { knownApps.add(pageDevice.app); $('tail-app').append(h('option', { value: pageDevice.app }, pageDevice.app)) }
    $('tail-app').value = pageDevice.app
    refilter()
  })

  for (const radio of document.querySelectorAll('input[name=dl-mode]')) {
    radio.addEventListener('change', () => {
      const hex = document.querySelector('input[name=dl-mode]:checked').value === 'hex'
      for (const el of document.querySelectorAll('.dl-hex')) el.hidden = !hex
      for (const el of document.querySelectorAll('.dl-object')) el.hidden = hex
    })
  }

  $('downlink-form').addEventListener('submit', async e => {
    e.preventDefault()
    if (pageDevice === undefined) return
    const out = $('dl-result')
    const mode = document.querySelector('input[name=dl-mode]:checked').value
    const body = {}
    const port = $('dl-fport').value.trim()
    if (port !== '') body.fPort = Number(port)
    if ($('dl-confirmed').checked) body.confirmed = true
    if (mode === 'hex') {
      body.hex = $('dl-hex').value.replace(/[\s:-]/g, '')
    } else {
      try { body.object = JSON.parse($('dl-object').value) } catch (err) {
        out.className = 'small signal-poor'
        out.textContent = `The object is not valid JSON: ${err.message}`
        return
      }
    }
    $('dl-send').disabled = true
    try {
      const res = await api(`/console/api/devices/${encodeURIComponent(pageDevice.app)}/${encodeURIComponent(pageDevice.devEui)}/down`, body)
      out.className = 'small'
      out.textContent = `Sent as ${res.id}; its outcome shows below as it arrives.`
      out.dataset.id = res.id
      refreshSoon('device')
    } catch (err) {
      out.className = 'small signal-poor'
      out.textContent = `${err.field ? `${err.field}: ` : ''}${err.message}`
    }
    $('dl-send').disabled = false
  })

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

  const loaders = { gateways: loadGateways, devices: loadDevices, rules: loadRules, device: loadDevice }
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
  setInterval(() => { if (pageDevice !== undefined) refreshSoon('device') }, REFRESH_MS)
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
    if (kind.startsWith('instances/')) return [body.online ? 'online' : 'offline', body.name ?? '', body.store !== undefined ? `store ${body.store}` : '', body.version !== undefined ? `version ${body.version}` : ''].filter(Boolean).join(' · ')
    return outcomeSummary(kind, body) ?? JSON.stringify(body)
  }

  const payloadText = r => r.hex !== undefined ? `hex ${r.hex}` : r.object !== undefined ? `object ${JSON.stringify(r.object)}` : r.data !== undefined ? `base64 ${r.data}` : 'no payload'

  /** One line for a downlink request or outcome, a device status or location; undefined for anything else. */
  function outcomeSummary (kind, b) {
    const id = b.id !== undefined ? `id ${b.id}` : 'no id'
    switch (kind) {
      case 'down': {
        const list = Array.isArray(b) ? b : [b]
        if (list.length !== 1) return `${list.length} requests: ${list.map(r => r?.id ?? 'no id').join(', ')}`
        const r = list[0] ?? {}
        return ['request', r.id !== undefined ? `id ${r.id}` : 'no id', r.fPort !== undefined ? `fPort ${r.fPort}` : '', payloadText(r), r.confirmed ? 'confirmed' : '', r.replace || r.flush ? 'replace' : ''].filter(Boolean).join(' · ')
      }
      case 'down/queued': return ['queued', id, b.command === 'clear' ? 'clear' : '', ...(b.caveats ?? []).map(c => `caveat: ${c}`)].filter(Boolean).join(' · ')
      case 'down/sent': return ['sent', id, b.fCntDn !== undefined ? `fCntDn ${b.fCntDn}` : '', b.transmissionSlot !== undefined ? `slot ${b.transmissionSlot}` : ''].filter(Boolean).join(' · ')
      case 'down/acked': return ['acked', id, b.ackedBy?.fCnt !== undefined ? `by the uplink with fCnt ${b.ackedBy.fCnt}` : ''].filter(Boolean).join(' · ')
      case 'down/failed': return [`failed: ${b.reason ?? '?'}`, id, b.detail ?? '', ...(b.codecErrors ?? [])].filter(Boolean).join(' · ')
      case 'down/pending': {
        const list = b.pending ?? []
        const acking = list.filter(p => p.state === 'awaiting-ack').length
        return list.length === 0 ? 'nothing pending' : `${list.length} pending${acking > 0 ? ` (${acking} awaiting ACK)` : ''}: ${list.map(p => p.id).join(', ')}`
      }
      case 'join': return ['joined', b.devAddr !== undefined ? `devAddr ${b.devAddr}` : '', (b.gateways ?? [])[0]?.id ?? ''].filter(Boolean).join(' · ')
      case 'status': return [b.type ?? 'status', b.battery !== undefined ? `battery ${b.battery}` : '', b.margin !== undefined ? `margin ${b.margin} dB` : '', b.resetCause ?? ''].filter(Boolean).join(' · ')
      case 'location': return `${b.latitude}, ${b.longitude}${b.radius !== undefined ? ` ± ${b.radius} m` : ''}`
      default: return undefined
    }
  }

  /** What the tail's filters look at: the event kind (or its group), the application and the device. */
  function topicParts (topic) {
    const l = topic.split('/')
    if (l[1] === 'gateways') return { kind: 'gateway', group: 'gateway', app: '', devEui: '' }
    if (l[1] === '_bridge') return { kind: l.slice(2).join('/'), group: '_bridge', app: '', devEui: '' }
    if (l[2] === 'devices') return { kind: l.slice(4).join('/'), group: 'device', app: l[1] ?? '', devEui: l[3] ?? '' }
    return { kind: 'other', group: 'other', app: '', devEui: '' }
  }

  /** The topic as text, its DevEUI a link to the device's page. */
  function topicNode (topic) {
    const p = topicParts(topic)
    if (p.group !== 'device') return topic
    const l = topic.split('/')
    return [`${l.slice(0, 3).join('/')}/`, h('a', { href: deviceHref(p.app, p.devEui), class: 'device-link', onclick: e => { e.stopPropagation() } }, p.devEui), `/${l.slice(4).join('/')}`]
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
    if (pageDevice !== undefined && topic.startsWith(`${root}/${pageDevice.app}/devices/${pageDevice.devEui}/`)) refreshSoon('device')
    const parts = topicParts(topic)
    if (parts.app !== '' && !knownApps.has(parts.app)) {
      knownApps.add(parts.app)
      $('tail-app').append(h('option', { value: parts.app }, parts.app))
    }
    const item = h('li', { class: 'new', 'data-topic': topic, 'data-kind': parts.kind, 'data-group': parts.group, 'data-app': parts.app, 'data-deveui': parts.devEui, title: retained ? 'retained' : undefined, onclick: () => {
      const open = item.querySelector('pre')
      if (open) { open.remove(); return }
      item.append(h('pre', {}, typeof body === 'object' ? JSON.stringify(body, null, 2) : text))
    } },
    h('span', { class: 't' }, clock(new Date())),
    h('span', {}, h('span', { class: `kind ${kindClass}` }, kind)),
    h('span', { class: 'topic' }, topicNode(topic), retained ? h('span', { class: 'muted' }, ' (retained)') : ''),
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
    const dev = $('tail-device').value.replace(/[-:\s]/g, '').toLowerCase()
    const app = $('tail-app').value
    const kind = $('tail-kind').value
    const d = li.dataset
    const kindOk = kind === '' || (kind === 'down/*' ? d.kind.startsWith('down/') : kind === '_bridge' || kind === 'gateway' ? d.group === kind : d.kind === kind)
    li.hidden = !kindOk || (app !== '' && d.app !== app) || (dev !== '' && !d.deveui.includes(dev)) || (f !== '' && !li.textContent.toLowerCase().includes(f))
  }

  const knownApps = new Set()
  const refilter = () => { for (const li of $('tail').children) applyFilter(li) }
  for (const id of ['tail-filter', 'tail-device']) $(id).addEventListener('input', refilter)
  for (const id of ['tail-app', 'tail-kind']) $(id).addEventListener('change', refilter)
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
