// The console's rule file editor (docs/console.md, "Editing rules"), in the Rules tab: open a rule
// file of rules.dir, see its compile errors as you type, dry-run the draft on a device's last
// uplink, and save it (only when it compiles, over the version that was opened). The API is under
// /console/api/rule-editor. Plain DOM; everything from the server is put in the page as text.
'use strict'
;(() => {
  const COMPILE_DELAY_MS = 350
  const NEW = '\u0000new'
  const root = document.getElementById('rule-editor')
  if (root === null) return

  function h (tag, attrs, ...children) {
    const el = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (v === undefined || v === null || v === false) continue
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
      else el.setAttribute(k, v === true ? '' : String(v))
    }
    for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false && c !== '') el.append(c instanceof Node ? c : String(c))
    return el
  }

  async function api (path, body) {
    const res = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (res.status === 401) { location.replace('/'); throw new Error('session ended') }
    const text = await res.text()
    let data
    try { data = text === '' ? undefined : JSON.parse(text) } catch { data = undefined }
    if (!res.ok) throw Object.assign(new Error(data?.message ?? `${res.status} ${res.statusText}`), { code: data?.error, status: res.status, data })
    return data
  }

  const clock = iso => new Date(iso).toTimeString().slice(0, 8)
  const short = etag => (etag ?? '').slice(0, 12)

  // ------------------------------------------------------------------ the page

  const fileSelect = h('select', { id: 're-file', 'aria-label': 'Rule file' })
  const newName = h('input', { id: 're-new-name', type: 'text', placeholder: 'new-file.yaml', 'aria-label': 'New file name', spellcheck: 'false', hidden: true })
  const saveButton = h('button', { id: 're-save', type: 'button', class: 'primary', disabled: true }, 'Save')
  const revertButton = h('button', { id: 're-revert', type: 'button', class: 'ghost', disabled: true }, 'Revert')
  const running = h('span', { id: 're-running', class: 'muted small' })
  const heading = h('h3', {}, 'Rule files')
  const gutter = h('div', { id: 're-gutter', class: 're-gutter', 'aria-hidden': 'true' })
  const text = h('textarea', { id: 're-text', class: 're-text', spellcheck: 'false', wrap: 'off', autocomplete: 'off', autocapitalize: 'off', 'aria-label': 'Rule file text', 'aria-describedby': 're-compile' })
  const compileBox = h('div', { id: 're-compile', class: 're-compile', 'aria-live': 'polite' })
  const deviceSelect = h('select', { id: 're-device', 'aria-label': 'Event for the dry run' })
  const eventText = h('textarea', { id: 're-event', class: 're-event', spellcheck: 'false', rows: 8, hidden: true, 'aria-label': 'Normalized event (JSON)', placeholder: '{ "app": "…", "devEui": "…", "fPort": 2, "hex": "…" }' })
  const runButton = h('button', { id: 're-run', type: 'button', class: 'ghost' }, 'Dry run')
  const tryResult = h('div', { id: 're-try-result', class: 're-try-result', 'aria-live': 'polite' })
  const outcome = h('div', { id: 're-outcome', class: 're-outcome', 'aria-live': 'polite' })
  const offNote = h('p', { id: 're-off', class: 'muted small', hidden: true },
    'Editing is off: the files are shown read-only. An operator turns it on with ', h('code', {}, 'http.console.ruleEditing: true'), '.')
  const tryBox = h('div', { class: 're-try' },
    h('div', { class: 're-try-input' }, h('label', { for: 're-device' }, 'Dry run on'), deviceSelect, runButton),
    eventText, tryResult)

  root.replaceChildren(
    h('div', { class: 'panel-head re-head' }, heading, running),
    offNote,
    h('div', { class: 're-toolbar' }, fileSelect, newName, h('span', { class: 're-spacer' }), revertButton, saveButton),
    h('div', { class: 're-editor' }, gutter, text),
    compileBox,
    outcome,
    tryBox,
  )

  // ------------------------------------------------------------------ state

  let editing = false
  /** What the open file holds on disk: its name (undefined for a new file), content and etag. */
  let opened = { file: undefined, content: '', etag: null }
  let compileSeq = 0
  let compileTimer
  /** The latest compile's errors for the current text; undefined while one is due. */
  let errors = []
  let compiling = false
  let saving = false

  const currentName = () => fileSelect.value === NEW ? newName.value.trim() : fileSelect.value
  const changed = () => opened.file === undefined || text.value !== opened.content

  function updateButtons () {
    const name = currentName()
    saveButton.disabled = !editing || saving || compiling || errors === undefined || errors.length > 0 || !changed() || name === ''
    saveButton.title = !editing ? 'editing is off' : errors?.length > 0 ? 'fix the errors first' : compiling ? 'compiling…' : !changed() ? 'no change' : ''
    revertButton.disabled = !editing || opened.file === undefined || !changed()
    runButton.disabled = !editing || errors === undefined || errors.length > 0 || compiling || name === ''
  }

  function paintGutter () {
    const lines = text.value.split('\n').length
    const bad = new Set((errors ?? []).map(e => e.line))
    if (gutter.childElementCount !== lines || gutter.dataset.bad !== [...bad].join(',')) {
      gutter.replaceChildren(...Array.from({ length: lines }, (_, i) => h('div', { class: bad.has(i + 1) ? 'bad' : undefined }, String(i + 1))))
      gutter.dataset.bad = [...bad].join(',')
    }
    gutter.scrollTop = text.scrollTop
  }

  /** Moves the caret to a line and column (1-based) of the text. */
  function goTo (line, column) {
    const lines = text.value.split('\n')
    let offset = 0
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1
    offset += Math.max(0, Math.min(column - 1, (lines[line - 1] ?? '').length))
    text.focus()
    text.setSelectionRange(offset, offset + 1)
  }

  function showErrors (list, title) {
    return [
      h('p', { class: 're-status bad' }, title ?? `${list.length} error${list.length === 1 ? '' : 's'} — not saved until fixed`),
      h('ul', { id: 're-errors', class: 'errors' }, list.map(e => h('li', { 'data-line': e.line, title: 'go to this line', onclick: () => goTo(e.line, e.column) },
        h('span', { class: 'where' }, `${e.file}:${e.line}:${e.column}`), h('span', { class: 'tag' }, e.code), e.path ? h('span', { class: 'tag' }, e.path) : '',
        ' ', e.message, e.jsonata?.token ? h('span', { class: 'muted' }, ` (at “${e.jsonata.token}”)`) : ''))),
    ]
  }

  // ------------------------------------------------------------------ compile as you type

  async function compileNow () {
    clearTimeout(compileTimer)
    if (!editing) return
    const name = currentName()
    const seq = ++compileSeq
    compiling = true
    updateButtons()
    try {
      const r = await api('/console/api/rule-editor/compile', { file: name === '' ? 'new-file.yaml' : name, content: text.value })
      if (seq !== compileSeq) return
      errors = r.errors
      compileBox.replaceChildren(...(r.ok
        ? [h('p', { class: 're-status ok' }, `Compiles: ${r.rules.length} rule${r.rules.length === 1 ? '' : 's'}${r.rules.length > 0 ? ` (${r.rules.join(', ')})` : ''}, ${r.decoders.length} decoder${r.decoders.length === 1 ? '' : 's'}`)]
        : showErrors(r.errors)))
    } catch (err) {
      if (seq !== compileSeq) return
      errors = [{ file: name, line: 1, column: 1, code: err.code ?? 'error', message: err.message }]
      compileBox.replaceChildren(h('p', { class: 'error' }, `${err.code ? `${err.code}: ` : ''}${err.message}`))
    } finally {
      if (seq === compileSeq) { compiling = false; paintGutter(); updateButtons() }
    }
  }

  text.addEventListener('input', () => {
    errors = undefined
    paintGutter()
    updateButtons()
    clearTimeout(compileTimer)
    compileTimer = setTimeout(compileNow, COMPILE_DELAY_MS)
  })
  text.addEventListener('scroll', () => { gutter.scrollTop = text.scrollTop })
  newName.addEventListener('input', () => { updateButtons(); clearTimeout(compileTimer); compileTimer = setTimeout(compileNow, COMPILE_DELAY_MS) })

  // ------------------------------------------------------------------ files

  async function runningStatus () {
    const name = currentName()
    try {
      const st = await api('/console/api/rules')
      const f = st.files.find(x => x.file === name)
      running.textContent = f === undefined ? (name ? `${name} is not loaded` : '') : f.ok ? `${f.file}: loaded ${clock(f.loadedAt)}, ${f.rules.length} rule${f.rules.length === 1 ? '' : 's'}` : `${f.file}: error — the previous version runs`
      running.className = `small ${f !== undefined && !f.ok ? 'signal-poor' : 'muted'}`
    } catch { /* the Rules tab shows it too */ }
  }

  async function listFiles (select) {
    const st = await api('/console/api/rule-editor')
    editing = st.editing
    offNote.hidden = editing
    heading.textContent = editing ? 'Edit a rule file' : 'Rule files (read-only)'
    text.readOnly = !editing
    saveButton.hidden = !editing
    revertButton.hidden = !editing
    tryBox.hidden = !editing
    const keep = select ?? fileSelect.value
    fileSelect.replaceChildren(
      ...st.files.map(f => h('option', { value: f.file, disabled: !f.editable, title: f.reason }, f.editable ? f.file : `${f.file} (${f.reason})`)),
      editing ? h('option', { value: NEW }, 'New file…') : '',
    )
    const first = st.files.find(f => f.editable)?.file
    fileSelect.value = [...fileSelect.options].some(o => o.value === keep && !o.disabled) ? keep : first ?? (editing ? NEW : '')
    return st
  }

  async function open (name) {
    outcome.replaceChildren()
    tryResult.replaceChildren()
    newName.hidden = name !== NEW
    if (name === NEW || name === '') {
      opened = { file: undefined, content: '', etag: null }
      text.value = name === NEW ? 'rules:\n  - name: my-rule\n    on: up\n    when: { fPort: 2 }\n    downlink: |\n      { "fPort": 3, "hex": "01" }\n' : ''
      if (name === NEW) newName.focus()
    } else {
      const f = await api(`/console/api/rule-editor/files/${encodeURIComponent(name)}`)
      opened = { file: f.file, content: f.content, etag: f.etag }
      text.value = f.content
    }
    text.scrollTop = 0
    errors = editing ? undefined : []
    compileBox.replaceChildren()
    paintGutter()
    updateButtons()
    void runningStatus()
    if (editing) await compileNow()
  }

  fileSelect.addEventListener('change', () => {
    if (opened.file !== undefined && changed() && !confirm('Discard your changes to this file?')) { fileSelect.value = opened.file; return }
    open(fileSelect.value).catch(err => { outcome.replaceChildren(h('p', { class: 'error' }, err.message)) })
  })
  revertButton.addEventListener('click', () => { open(opened.file).catch(err => { outcome.replaceChildren(h('p', { class: 'error' }, err.message)) }) })

  // ------------------------------------------------------------------ save

  function reloadText (reload) {
    if (reload.status === 'loaded') return h('p', { class: 're-status ok', id: 're-reloaded' }, `The daemon reloaded it at ${clock(reload.loadedAt)}: ${reload.rules.length} rule${reload.rules.length === 1 ? '' : 's'}${reload.rules.length > 0 ? ` (${reload.rules.join(', ')})` : ''}, ${reload.decoders.length} decoder${reload.decoders.length === 1 ? '' : 's'}.`)
    if (reload.status === 'failed') return showErrors(reload.errors, 'The daemon could not load it; the previous version keeps running:')
    return h('p', { class: 'muted' }, reload.message)
  }

  saveButton.addEventListener('click', async () => {
    const name = currentName()
    saving = true
    updateButtons()
    outcome.replaceChildren(h('p', { class: 'muted' }, `Saving ${name}…`))
    try {
      const r = await api('/console/api/rule-editor/save', { file: name, content: text.value, etag: opened.etag })
      opened = { file: r.file, content: text.value, etag: r.etag }
      await listFiles(r.file)
      newName.hidden = true
      newName.value = ''
      outcome.replaceChildren(h('p', { class: 're-status ok' }, `${r.created ? 'Created' : 'Saved'} ${r.file} (${r.size} bytes, sha256 ${short(r.etag)}…).`), reloadText(r.reload))
      void runningStatus()
    } catch (err) {
      const parts = [h('p', { class: 'error' }, `Not saved — ${err.code ? `${err.code}: ` : ''}${err.message}`)]
      if (err.code === 'LB_ERR_RULE_EDIT_INVALID' && Array.isArray(err.data?.errors)) { errors = err.data.errors; parts.push(...showErrors(err.data.errors)); paintGutter() }
      if (err.code === 'LB_ERR_RULE_EDIT_CONFLICT' && opened.file !== undefined) {
        parts.push(h('p', {}, h('button', { type: 'button', class: 'ghost', id: 're-reload-disk', onclick: () => { void open(opened.file) } }, 'Load the file as it is now (your changes are lost)')))
      }
      outcome.replaceChildren(...parts)
    } finally {
      saving = false
      updateButtons()
    }
  })

  // ------------------------------------------------------------------ dry run

  /** The user's choice in the device list, once made: kept across refreshes of the list. */
  let chosenDevice
  async function listDevices () {
    if (!editing) return
    const keep = chosenDevice
    const { devices } = await api('/console/api/rule-editor/uplinks')
    deviceSelect.replaceChildren(
      ...devices.map(d => h('option', { value: d.devEui }, `${d.devEui} (${d.app}) · last uplink ${clock(d.receivedAt)}${d.fPort !== undefined ? ` · fPort ${d.fPort}` : ''}`)),
      h('option', { value: '' }, 'a pasted event (JSON)…'),
    )
    deviceSelect.value = [...deviceSelect.options].some(o => o.value === keep) ? keep : deviceSelect.options[0].value
    eventText.hidden = deviceSelect.value !== ''
  }
  deviceSelect.addEventListener('change', () => { chosenDevice = deviceSelect.value; eventText.hidden = deviceSelect.value !== '' })
  deviceSelect.addEventListener('focus', () => { listDevices().catch(() => {}) })

  function renderTry (r) {
    const byRule = new Map((r.rules ?? []).map(x => [x.rule, x]))
    const failed = r.deadLetters ?? []
    tryResult.replaceChildren(...[
      h('p', { class: 'muted small' }, `On ${r.event?.devEui ?? 'the event'}${r.event?.fCnt !== undefined ? `, fCnt ${r.event.fCnt}` : ''}${r.event?.hex ? `, payload ${r.event.hex}` : ''}; nothing was sent.`),
      r.decoder !== undefined ? [h('h4', {}, `Decoded by ${r.decoder}`), h('pre', {}, JSON.stringify(r.decoded ?? null, null, 2))] : '',
      h('h4', {}, 'Rules'),
      h('div', { class: 'chips' }, r.matched.length === 0 ? h('span', { class: 'muted' }, 'no rule matches this event') : r.matched.map(name => h('span', { class: `chip ${byRule.get(name)?.passed ? 'on' : 'off'}` }, name))),
      h('h4', {}, `Downlinks (${r.downlinks.length})`),
      r.downlinks.length === 0 ? h('p', { class: 'muted' }, 'none') : h('table', { class: 'grid', id: 're-try-downlinks' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'fPort'), h('th', {}, 'Payload'))),
        h('tbody', {}, r.downlinks.map(d => h('tr', {}, h('td', { class: 'mono' }, d.devEui), h('td', {}, String(d.request.fPort ?? '–')), h('td', { class: 'mono' }, d.request.hex ?? d.request.data ?? JSON.stringify(d.request.object ?? null)))))),
      h('h4', {}, `Publications (${r.publications.length})`),
      r.publications.length === 0 ? h('p', { class: 'muted' }, 'none') : r.publications.map(p => h('div', {}, h('div', { class: 'mono' }, p.topic), h('pre', {}, JSON.stringify(p.payload, null, 2)))),
      failed.length > 0 ? [h('h4', { class: 'signal-poor' }, `Errors (${failed.length})`), h('ul', { class: 'errors' }, failed.map(d => h('li', {}, h('span', { class: 'where' }, `${d.rule} · ${d.stage}`), h('span', { class: 'tag' }, d.code), ' ', d.message)))] : '',
    ].flat(Infinity).filter(x => x !== ''))
  }

  runButton.addEventListener('click', async () => {
    const body = { file: currentName(), content: text.value }
    if (deviceSelect.value === '') {
      try { body.event = JSON.parse(eventText.value) } catch (err) { tryResult.replaceChildren(h('p', { class: 'error' }, `The event is not valid JSON: ${err.message}`)); return }
    } else body.devEui = deviceSelect.value
    runButton.disabled = true
    try {
      renderTry(await api('/console/api/rule-editor/try', body))
    } catch (err) {
      tryResult.replaceChildren(h('p', { class: 'error' }, `${err.code ? `${err.code}: ` : ''}${err.message}`))
    } finally {
      updateButtons()
    }
  })

  // ------------------------------------------------------------------ start

  async function main () {
    await listFiles()
    await listDevices().catch(() => {})
    await open(fileSelect.value)
  }
  main().catch(err => { root.append(h('p', { class: 'error' }, `The rule editor could not start: ${err.message}`)) })
  // New devices for the dry run as they are heard (the list is small and fetched only while the Rules tab shows).
  setInterval(() => { if (!root.closest('[hidden]') && document.activeElement !== deviceSelect) listDevices().catch(() => {}) }, 5000)
})()
