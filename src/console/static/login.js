// The console's login form: posts JSON (never a form encoding, see docs/console.md) and reloads
// `/`, which serves the console once the session cookie is set.
'use strict'
;(() => {
  const form = document.getElementById('login')
  const error = document.getElementById('login-error')
  const MESSAGES = {
    // The daemon gives one answer for every failure, so that it tells an attacker nothing.
    LB_ERR_CONSOLE_LOGIN: 'Login failed: unknown user, wrong password, or not an admin.',
    LB_ERR_CONSOLE_LOGIN_RATE: 'Too many failed logins. Try again later.',
  }
  form.addEventListener('submit', async event => {
    event.preventDefault()
    error.hidden = true
    const button = form.querySelector('button')
    button.disabled = true
    try {
      const res = await fetch('/console/api/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ username: form.username.value, password: form.password.value }),
      })
      if (res.ok) { location.replace('/'); return }
      const body = await res.json().catch(() => ({}))
      error.textContent = MESSAGES[body.error] ?? body.message ?? `Login failed (${res.status}).`
      error.dataset.code = body.error ?? ''
    } catch (err) {
      error.textContent = `The daemon cannot be reached: ${err.message}`
    }
    error.hidden = false
    button.disabled = false
    form.password.select()
  })
})()
