// popbridge console. Plain JavaScript, no build step, no third-party code.
// Every text comes from the catalog the page carries (data-i18n); every
// change goes through the console's /api (with the CSRF token); live
// updates come as Server-Sent Events from /events.
'use strict';
(() => {
  const body = document.body;
  const LANG = body.dataset.lang || 'en';
  const I18N = JSON.parse(body.dataset.i18n || '{}');
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const NUM = new Intl.NumberFormat(LANG === 'ja' ? 'ja-JP' : 'en-US');

  // ---------------------------------------------------------------------
  // Helpers

  function t(key, params) {
    let s = Object.prototype.hasOwnProperty.call(I18N, key) ? I18N[key] : key;
    if (params) {
      for (const [k, v] of Object.entries(params)) s = s.split('{' + k + '}').join(String(v));
    }
    return s;
  }
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'value') e[k] = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function setText(id, s) { const e = $(id); if (e) e.textContent = s; }
  const num = (n) => NUM.format(n || 0);
  function bytes(n) {
    n = n || 0;
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + ' GB';
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MB';
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KB';
    return n + ' B';
  }
  // Go durations travel as nanoseconds.
  function duration(ns) {
    let s = Math.round((ns || 0) / 1e9);
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (h > 0) return t('dur.hm', { h, m });
    if (m > 0) return t('dur.ms', { m, s });
    return t('dur.s', { s });
  }
  function when(iso) {
    if (!iso || iso.startsWith('0001-')) return t('never');
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(LANG === 'ja' ? 'ja-JP' : 'en-US');
  }

  class ApiError extends Error {
    constructor(status, data) {
      super((data && data.error) || ('HTTP ' + status));
      this.status = status;
      this.code = (data && data.code) || '';
      this.params = (data && data.params) || {};
    }
  }
  async function api(method, path, data) {
    const opt = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') opt.headers['X-CSRF-Token'] = CSRF;
    if (data !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(data);
    }
    let r;
    try {
      r = await fetch(path, opt);
    } catch (e) {
      throw new ApiError(0, { code: 'network', error: '' });
    }
    const ct = r.headers.get('Content-Type') || '';
    const out = ct.includes('json') ? await r.json() : null;
    if (!r.ok) throw new ApiError(r.status, out);
    return out;
  }
  // errText says what went wrong: the console's words for the error's
  // code, then popbridge's own wording of the details.
  function errText(err) {
    if (!(err instanceof ApiError)) return t('error.internal') + ' ' + String(err);
    const key = 'error.' + err.code;
    const head = Object.prototype.hasOwnProperty.call(I18N, key) ? t(key, err.params) : '';
    if (!head) return err.message || t('error.internal');
    return err.message && err.code !== 'network' ? head + ' (' + err.message + ')' : head;
  }
  function status(id, text, kind) {
    const e = $(id);
    if (!e) return;
    e.textContent = text || '';
    e.classList.toggle('error', kind === 'error');
    e.classList.toggle('result-ok', kind === 'ok');
  }

  // Copy buttons: data-copy names an element whose text is copied,
  // data-copy-text is the text itself.
  document.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button.copy');
    if (!b) return;
    const src = b.dataset.copy ? $(b.dataset.copy) : null;
    const text = b.dataset.copyText || (src ? src.textContent : '');
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      const ta = el('textarea', { class: 'offscreen' });
      ta.value = text;
      document.body.append(ta);
      ta.select();
      try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      ta.remove();
    }
    const old = b.textContent;
    b.textContent = ok ? t('copied') : t('copyFailed');
    setTimeout(() => { b.textContent = old; }, 1500);
  });

  // The language selector switches at once.
  const langSelect = $('lang-select');
  if (langSelect) {
    $('lang-submit').hidden = true;
    langSelect.addEventListener('change', () => $('lang-form').submit());
  }

  // live subscribes to the console's event stream; the browser reconnects
  // by itself after a restart of popbridge.
  // handlers.open runs each time the stream (re)connects: what happened
  // while it was not connected must be fetched.
  function live(handlers) {
    const es = new EventSource('/events');
    if (handlers.open) es.addEventListener('open', handlers.open);
    for (const [type, fn] of Object.entries(handlers)) {
      if (type === 'open') continue;
      es.addEventListener(type, (m) => {
        let data = {};
        try { data = JSON.parse(m.data); } catch (e) { return; }
        fn(data);
      });
    }
    return es;
  }
  // throttle runs fn at most every ms, the last call winning.
  function throttle(fn, ms) {
    let timer = null, again = false;
    return function run() {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(() => { timer = null; if (again) { again = false; run(); } }, ms);
    };
  }

  // inLang picks the text of the page's language from a {lang: text} map
  // (texts popbridge words itself, e.g. a sign-in to renew).
  function inLang(texts) {
    return texts && (texts[LANG] || texts.en) ? (texts[LANG] || texts.en) : '';
  }
  const PROVIDERS = { microsoft: 'Microsoft', google: 'Google' };

  function problemItem(p) {
    const head = inLang(p.texts) || t('problem.' + p.kind, p.params || {});
    const li = el('li', {}, el('span', { text: head }));
    if (p.count > 1) li.append(' ', el('span', { class: 'hint', text: t('problem.count', { n: p.count }) }));
    if (p.detail && !p.detail.startsWith(head)) li.append(el('span', { class: 'detail', text: p.detail }));
    return li;
  }

  function fitDate(plan) {
    const m = /(\d{4}-\d{2}-\d{2})/.exec(plan.fit_hint || '');
    return m ? m[1] : '';
  }

  // migText describes a migration's state in a sentence.
  function migText(st) {
    if (!st || st.state === 'idle') return t('move.state.idle');
    let s = t('move.state.' + st.state);
    if (st.total > 0) {
      s += ' ' + t('move.progressText', { done: num(st.done), total: num(st.total), bytes: bytes(st.bytes), totalBytes: bytes(st.total_bytes) });
    }
    if (st.state === 'running' && st.eta > 0) s += ' ' + t('move.eta', { eta: duration(st.eta) });
    return s;
  }
  function migFraction(st) {
    if (!st || !st.total) return 0;
    if (st.total_bytes > 0) return Math.min(1, st.bytes / st.total_bytes);
    return Math.min(1, st.done / st.total);
  }

  // ---------------------------------------------------------------------
  // Overview

  async function dashboardPage() {
    const render = (d) => {
      const banner = $('state-banner');
      banner.hidden = d.state === 'running';
      banner.classList.toggle('bad', d.state === 'stopped');
      banner.textContent = d.state === 'stopped' ? t('dash.stopped') + ' ' + (d.start_error || '') : t('dash.starting');
      const tot = d.totals;
      setText('totals', t('dash.totalsText', { n: num(tot.messages), size: bytes(tot.bytes) }));
      setText('totals-detail', d.upstream
        ? t('dash.totalsServer', { on: num(tot.on_server), togo: num(tot.to_go), size: bytes(tot.to_go_bytes) })
        : t('dash.noServer'));
      const q = d.quota;
      const meter = $('quota-meter');
      if (q && !q.error && q.limit > 0) {
        meter.hidden = false;
        meter.value = Math.min(1, q.used / q.limit);
        setText('quota-text', t('dash.quotaText', { used: bytes(q.used), limit: bytes(q.limit), free: bytes(Math.max(0, q.limit - q.used)) }));
        const over = q.used + tot.to_go_bytes > q.limit;
        const add = $('quota-add');
        add.textContent = t('dash.quotaAdds', { size: bytes(tot.to_go_bytes), after: bytes(q.used + tot.to_go_bytes) }) + ' ' +
          (over ? t('dash.quotaOver') : t('dash.quotaFits'));
        add.className = over ? 'warn' : '';
      } else {
        meter.hidden = true;
        setText('quota-add', '');
        setText('quota-text', !d.upstream ? t('dash.noServer') : q && q.error ? t('dash.quotaError') : q === undefined || q === null ? t('dash.quotaChecking') : t('dash.quotaNone'));
      }
      renderMig(d.migration);
      $('verified-banner').hidden = !(d.verify && d.verify.ok && d.migration && d.migration.state === 'done');
      const probs = clear($('problems'));
      for (const p of d.problems || []) probs.append(problemItem(p));
      $('no-problems').hidden = (d.problems || []).length > 0;
      const tb = clear(document.querySelector('#folders tbody'));
      const empty = (d.folders || []).filter((f) => f.messages === 0).length;
      $('show-empty').hidden = empty === 0;
      setText('show-empty-label', t('dash.showEmpty', { n: num(empty) }));
      for (const f of d.folders || []) {
        if (f.messages === 0 && !$('show-empty-box').checked) continue;
        tb.append(el('tr', {},
          el('td', { text: f.name + (f.missing ? ' ' + t('dash.missing') : '') }),
          el('td', { class: 'num', text: num(f.messages) }),
          el('td', { class: 'num', text: d.upstream ? num(f.on_server) : '—' }),
          el('td', { class: 'num', text: d.upstream ? num(f.to_go) : '—' }),
          el('td', { class: 'num', text: bytes(f.bytes) })));
      }
      $('no-folders').hidden = (d.folders || []).length > 0;
      const cl = clear($('clients'));
      for (const c of d.clients || []) {
        cl.append(el('li', { text: t('dash.client', { user: c.user, remote: c.remote, since: when(c.since) }) + (c.tls ? ' ' + t('dash.tls') : '') }));
      }
      $('no-clients').hidden = (d.clients || []).length > 0;
      $('pop-section').hidden = !(d.pop3 || []).length;
      const pop = clear($('pop'));
      for (const p of d.pop3 || []) {
        const res = p.last_error ? t('dash.popError', { err: p.last_error }) : (p.last_result || '');
        pop.append(el('li', { text: t('dash.popLine', { name: p.name, host: p.host || '', when: when(p.last_run), fetched: num(p.fetched) }) + (res ? ' — ' + res : '') }));
      }
    };
    const renderMig = (st) => {
      $('mig-progress').value = migFraction(st);
      setText('mig-text', migText(st));
    };
    let last = null;
    $('show-empty-box').addEventListener('change', () => { if (last) render(last); });
    const refresh = throttle(() => api('GET', '/api/dashboard').then((d) => { last = d; render(d); }).catch((e) => {
      const b = $('state-banner');
      b.hidden = false;
      b.textContent = errText(e);
    }), 1000);
    refresh();
    live({ open: refresh, dashboard: refresh, settings: refresh, verify: refresh, migration: (ev) => renderMig(ev.migration) });
  }

  // ---------------------------------------------------------------------
  // Set up

  async function setupPage() {
    let set = await api('GET', '/api/settings');
    let system = await api('GET', '/api/system').catch(() => ({ sign_in_providers: [] }));
    let preset = null;

    const show = (n) => {
      for (let i = 1; i <= 4; i++) $('step-' + i).hidden = i !== n;
      for (const b of document.querySelectorAll('#steps button')) {
        if (Number(b.dataset.step) === n) b.setAttribute('aria-current', 'step');
        else b.removeAttribute('aria-current');
      }
      history.replaceState(null, '', '#step-' + n);
      window.scrollTo(0, 0);
      if (n === 4) step4Enter();
    };
    const markDone = () => {
      const done = { 1: set.sources.length > 0, 2: !!set.upstream, 3: set.pop3.length > 0, 4: set.configured };
      for (const b of document.querySelectorAll('#steps button')) b.classList.toggle('done', !!done[b.dataset.step]);
    };
    for (const b of document.querySelectorAll('#steps button')) b.addEventListener('click', () => show(Number(b.dataset.step)));
    markDone();

    // Step 1: old mail.
    const chosen = new Map();
    for (const s of set.sources) chosen.set(s.path, { path: s.path, format: s.format, name: s.name });
    const rows = new Map();
    const list = $('stores');
    const scan = async (store, info) => {
      clear(info).append(el('span', { class: 'hint', text: t('setup.old.scanning') }));
      let sc;
      try {
        sc = await api('POST', '/api/stores/scan', store);
      } catch (e) {
        clear(info).append(el('span', { class: 'error', text: errText(e) }));
        return;
      }
      clear(info);
      if (sc.locked) {
        info.append(el('div', { class: 'locked' },
          el('strong', { text: t('setup.old.locked', { client: store.client || t('setup.old.itsProgram') }) }), ' ',
          el('button', { type: 'button', onclick: () => scan(store, info), text: t('retry') })));
        return;
      }
      if (sc.error) {
        info.append(el('div', { class: 'error', text: t('setup.old.unreadable') + ' ' + sc.error }),
          el('button', { type: 'button', onclick: () => scan(store, info), text: t('retry') }));
        return;
      }
      info.append(el('span', { text: t('setup.old.found', { folders: num(sc.folders.length), messages: num(sc.messages), size: bytes(sc.bytes) }) }));
      if (sc.folders.length) {
        const ul = el('ul');
        for (const f of sc.folders) ul.append(el('li', { text: t('setup.old.folder', { name: f.name, messages: num(f.messages), size: f.bytes ? bytes(f.bytes) : '—' }) }));
        info.append(el('details', {}, el('summary', { text: t('setup.old.folders') }), ul));
      }
      if ((sc.problems || []).length) {
        const ul = el('ul');
        for (const p of sc.problems) ul.append(el('li', { text: p }));
        info.append(el('details', {}, el('summary', { class: 'warn', text: t('setup.old.skipped', { n: num(sc.problems.length) }) }), ul));
      }
    };
    const addRow = (store) => {
      if (rows.has(store.path)) return;
      const id = 'store-' + rows.size;
      const box = el('input', { type: 'checkbox', id, checked: chosen.has(store.path) });
      box.addEventListener('change', () => {
        if (box.checked) chosen.set(store.path, { path: store.path, format: store.format || 'auto', name: (chosen.get(store.path) || {}).name || '' });
        else chosen.delete(store.path);
      });
      const info = el('div', { class: 'scan' });
      const li = el('li', { 'data-path': store.path },
        el('label', { class: 'check', for: id }, box,
          el('strong', { text: (store.client || t('setup.old.added')) + (store.name ? ' — ' + store.name : '') })),
        el('div', { class: 'path', text: store.path }), info);
      rows.set(store.path, li);
      list.append(li);
      $('stores-none').hidden = true;
      return () => scan(store, info);
    };
    const scans = [];
    try {
      const found = await api('GET', '/api/stores');
      for (const st of found) {
        const go = addRow(st);
        if (go) scans.push(go);
      }
    } catch (e) {
      status('stores-status', errText(e), 'error');
    }
    for (const s of set.sources) {
      if (!rows.has(s.path)) {
        const go = addRow({ path: s.path, format: s.format, client: t('setup.old.added'), name: s.name });
        if (go) scans.push(go);
      }
    }
    $('stores-searching').hidden = true;
    $('stores-none').hidden = rows.size > 0;
    (async () => { for (const go of scans) await go(); })();

    // The folder picker (the user's own files only).
    const browse = async (dir) => {
      $('picker-error').hidden = true;
      let l;
      try {
        l = await api('GET', '/api/browse?dir=' + encodeURIComponent(dir || ''));
      } catch (e) {
        $('picker-error').hidden = false;
        $('picker-error').textContent = errText(e);
        return;
      }
      setText('picker-path', l.dir);
      $('picker-up').disabled = !l.parent;
      $('picker-up').onclick = () => browse(l.parent);
      const ul = clear($('picker-list'));
      for (const e of l.entries) {
        const li = el('li', {}, el('span', { class: 'name', text: e.name + (e.dir ? '/' : '') + (e.size ? ' (' + bytes(e.size) + ')' : '') }));
        const btns = el('span');
        if (e.dir) btns.append(el('button', { type: 'button', text: t('picker.open'), onclick: () => browse(e.path) }));
        if (e.format) {
          btns.append(' ', el('button', {
            type: 'button', class: 'primary', text: t('picker.use'),
            onclick: () => {
              const store = { path: e.path, format: e.format, client: t('setup.old.added'), name: e.name };
              chosen.set(e.path, { path: e.path, format: e.format, name: '' });
              const go = addRow(store);
              const row = rows.get(e.path);
              row.querySelector('input').checked = true;
              if (go) go();
              $('picker').hidden = true;
            },
          }));
        }
        li.append(btns);
        ul.append(li);
      }
      if (!l.entries.length) ul.append(el('li', { class: 'hint', text: t('picker.empty') }));
    };
    $('add-store').addEventListener('click', () => { $('picker').hidden = false; browse(''); });
    $('picker-close').addEventListener('click', () => { $('picker').hidden = true; });
    $('save-stores').addEventListener('click', async () => {
      status('stores-status', t('saving'));
      try {
        set = await api('POST', '/api/settings', { sources: [...chosen.values()] });
        status('stores-status', t('saved'), 'ok');
        markDone();
        show(2);
      } catch (e) {
        status('stores-status', errText(e), 'error');
      }
    });

    // Step 2: the new mailbox.
    const mb = {
      email: $('mb-email'), host: $('mb-host'), port: $('mb-port'), tls: $('mb-tls'), user: $('mb-username'), pass: $('mb-password'),
    };
    const defPort = (tls, imap) => (tls === 'implicit' ? (imap ? 993 : 995) : (imap ? 143 : 110));
    if (set.upstream) {
      mb.host.value = set.upstream.host;
      mb.port.value = set.upstream.port;
      mb.tls.value = set.upstream.tls;
      mb.user.value = set.upstream.username;
      $('mb-password-saved').hidden = !set.upstream.password_set;
      if (set.upstream.username.includes('@')) mb.email.value = set.upstream.username;
    } else {
      mb.port.value = 993;
    }
    api('GET', '/api/devices').then((d) => { if (d.account.email && !mb.email.value) mb.email.value = d.account.email; }).catch(() => {});
    mb.tls.addEventListener('change', () => { mb.port.value = defPort(mb.tls.value, true); });
    // The browser sign-in (Microsoft, Google): the app registration's
    // client ID is saved with the mailbox ([upstream.oauth2]), then
    // popbridge opens the provider's page; this page follows the sign-in
    // through the event stream.
    let oauthProvider = '';
    const renderSignIn = (si) => {
      const box = $('mb-signin-state');
      if (!box) return;
      clear(box);
      if (!si || si.provider !== oauthProvider) return;
      const provider = PROVIDERS[si.provider] || si.provider;
      switch (si.state) {
        case 'waiting':
          box.append(el('p', { text: t('setup.mb.signInWaiting', { provider }) }));
          if (si.url) box.append(el('p', {}, el('a', { href: si.url, target: '_blank', rel: 'noopener noreferrer', id: 'mb-signin-link', text: t('setup.mb.signInLink', { provider }) })));
          break;
        case 'signed-in':
          box.append(el('p', { class: 'result-ok', text: t('setup.mb.signedIn', { provider, account: si.account }) }));
          break;
        case 'needed':
          box.append(el('p', { class: 'error', text: inLang(si.texts) || t('setup.mb.signInNeeded', { provider }) }));
          break;
        default:
          box.append(el('p', { class: 'error', text: t('setup.mb.signInError', { provider }) }), el('p', { class: 'hint', text: si.detail || '' }));
      }
    };
    const oauthForm = () => {
      if (!oauthProvider || !$('mb-client-id')) return null;
      const o = { provider: oauthProvider, client_id: $('mb-client-id').value.trim() };
      if ($('mb-tenant') && $('mb-tenant').value.trim()) o.tenant = $('mb-tenant').value.trim();
      if ($('mb-client-secret') && $('mb-client-secret').value) o.client_secret = $('mb-client-secret').value;
      return o;
    };
    const signInBox = (p) => {
      const sign = clear($('mb-signin'));
      sign.hidden = false;
      oauthProvider = p.oauth2;
      if (p.oauth2 === 'microsoft') sign.append(el('p', { class: 'warn', text: t('setup.mb.oauthOnly') }));
      if (!(system.sign_in_providers || []).includes(p.oauth2)) {
        sign.append(el('p', { class: 'hint', text: t('setup.mb.signInLater') }));
        return;
      }
      const provider = PROVIDERS[p.oauth2];
      const up = set.upstream && set.upstream.oauth2 && set.upstream.oauth2.provider === p.oauth2 ? set.upstream.oauth2 : null;
      sign.append(el('p', { text: t('setup.mb.oauthIntro', { provider }) }));
      sign.append(el('label', {}, t('setup.mb.oauthClientId') + ' ',
        el('input', { type: 'text', id: 'mb-client-id', spellcheck: 'false', autocomplete: 'off', value: up ? up.client_id : '' })));
      sign.append(el('p', { class: 'hint', text: t('setup.mb.oauthClientHelp.' + p.oauth2) }));
      if (p.oauth2 === 'microsoft') {
        sign.append(el('label', {}, t('setup.mb.oauthTenant') + ' ',
          el('input', { type: 'text', id: 'mb-tenant', spellcheck: 'false', placeholder: 'common', value: up && up.tenant && up.tenant !== 'common' ? up.tenant : '' })));
      } else {
        sign.append(el('label', {}, t('setup.mb.oauthSecret') + ' ', el('input', { type: 'password', id: 'mb-client-secret', autocomplete: 'off' })));
        if (up && up.client_secret_set) sign.append(el('p', { class: 'hint', text: t('setup.mb.oauthSecretSaved') }));
        sign.append(el('p', { class: 'hint', text: t('setup.mb.oauthOrPassword') }));
      }
      sign.append(el('p', {}, el('button', { type: 'button', class: 'primary', id: 'mb-signin-btn', text: t('setup.mb.signIn.' + p.oauth2), onclick: () => startSignIn(p) })));
      sign.append(el('div', { id: 'mb-signin-state', role: 'status' }));
      $('mb-password-box').hidden = p.oauth2 === 'microsoft';
      renderSignIn(system.sign_in);
    };
    // Answers about the sign-in may arrive out of order (the browser can
    // finish before the click's answer is back): the one asked last wins.
    let sysAsked = 0, sysShown = 0;
    const showSystem = (n, s) => {
      if (n <= sysShown) return;
      sysShown = n;
      system = s;
      renderSignIn(s.sign_in);
    };
    const refreshSystem = async () => {
      const n = ++sysAsked;
      try { showSystem(n, await api('GET', '/api/system')); } catch (e) { /* the next event asks again */ }
    };
    const startSignIn = async (p) => {
      status('mb-signin-state', t('setup.mb.signInSaving'));
      try {
        const f = upstreamForm();
        if (!f.oauth2) {
          f.oauth2 = oauthForm();
          delete f.password;
          f.auth = 'xoauth2';
        }
        set = await api('POST', '/api/settings', { upstream: f });
        markDone();
        const n = ++sysAsked;
        showSystem(n, await api('POST', '/api/system', { sign_in: p.oauth2 }));
      } catch (e) {
        status('mb-signin-state', errText(e), 'error');
      }
    };
    live({ open: refreshSystem, system: refreshSystem });

    const applyPreset = (p, fill) => {
      const box = $('mb-preset');
      const tmpl = clear($('mb-template'));
      tmpl.hidden = true;
      clear(box);
      $('mb-apppass').hidden = true;
      $('mb-signin').hidden = true;
      $('mb-password-box').hidden = false;
      oauthProvider = '';
      $('mb-username-hint').hidden = true;
      if (!p || !p.found) {
        box.hidden = !mb.email.value.includes('@');
        box.append(el('p', { text: t('setup.mb.noPreset') }));
        return;
      }
      box.hidden = false;
      box.append(el('p', {}, el('strong', { text: t('setup.mb.preset', { name: p.name }) })));
      if (p.help) box.append(el('p', { class: 'hint', text: p.help }));
      if (p.template && p.template_fields) {
        // A rental server: the host depends on the contract.
        tmpl.hidden = false;
        if (fill) {
          mb.host.value = '';
          if (p.imap_port) mb.port.value = p.imap_port;
          if (p.imap_tls) mb.tls.value = p.imap_tls;
        }
        tmpl.append(el('p', { text: p.template_hint }));
        const inputs = {};
        for (const f of p.template_fields) {
          const inp = el('input', { type: 'text', spellcheck: 'false', value: (p.suggest || {})[f] || '' });
          inputs[f] = inp;
          tmpl.append(el('label', {}, t('setup.mb.templateField', { template: p.template.split('{' + f + '}').join('…') }) + ' ', inp));
        }
        const msg = el('p', { class: 'status', role: 'status' });
        const use = el('button', {
          type: 'button', text: t('setup.mb.templateUse'),
          onclick: async () => {
            const values = {};
            for (const [f, inp] of Object.entries(inputs)) values[f] = inp.value;
            try {
              const q = await api('POST', '/api/presets/fill', { id: p.id, email: mb.email.value, values });
              preset = q;
              mb.host.value = q.imap_host;
              mb.port.value = q.imap_port;
              mb.tls.value = q.imap_tls;
              msg.textContent = t('setup.mb.templateOK', { host: q.imap_host });
              msg.className = 'status result-ok';
            } catch (e) {
              msg.textContent = e.message;
              msg.className = 'status error';
            }
          },
        });
        tmpl.append(use, msg);
        // The address may already say it (info@example.sakura.ne.jp).
        if (fill && p.suggest && Object.keys(p.suggest).length) use.click();
      } else if (fill) {
        mb.host.value = p.imap_host;
        mb.port.value = p.imap_port;
        mb.tls.value = p.imap_tls;
      }
      if (fill) mb.user.value = p.username || '';
      if (p.username_hint) { $('mb-username-hint').hidden = false; $('mb-username-hint').textContent = p.username_hint; }
      if (p.app_password) {
        $('mb-apppass').hidden = false;
        clear($('mb-apppass')).append(el('strong', { text: t('setup.mb.appPassTitle') }), el('p', { text: p.app_password_help || t('setup.mb.appPassGeneric') }));
      }
      if (p.oauth2) signInBox(p);
    };
    let lastEmail = '';
    const lookup = async (fill) => {
      const email = mb.email.value.trim();
      if (email === lastEmail) return;
      lastEmail = email;
      if (!email.includes('@')) { applyPreset(null, false); return; }
      try {
        preset = await api('GET', '/api/presets?email=' + encodeURIComponent(email));
        applyPreset(preset, fill);
        if (!preset.found && fill && !mb.user.value) mb.user.value = email;
      } catch (e) { /* manual settings stay */ }
    };
    mb.email.addEventListener('change', () => lookup(true));
    if (mb.email.value) lookup(!set.upstream);
    // upstreamForm is the mailbox as the form has it: with the browser
    // sign-in for Microsoft (passwords are refused there) and for Google
    // when a client ID is given and no (app) password typed.
    const upstreamForm = () => {
      const f = { host: mb.host.value.trim(), port: Number(mb.port.value) || 0, tls: mb.tls.value, username: mb.user.value.trim(), password: mb.pass.value };
      const o = oauthForm();
      if (o && (oauthProvider === 'microsoft' || (o.client_id && !mb.pass.value))) {
        f.oauth2 = o;
        f.auth = 'xoauth2';
        delete f.password;
      }
      return f;
    };
    $('mb-test').addEventListener('click', async () => {
      const out = clear($('mb-result'));
      out.append(el('p', { class: 'hint', text: t('setup.mb.testing') }));
      try {
        const r = await api('POST', '/api/upstream/test', upstreamForm());
        clear(out);
        if (r.ok) {
          out.append(el('p', { class: 'result-ok', text: t('setup.mb.ok', { host: r.host, folders: num(r.folders) }) }));
          if (r.quota && r.quota.limit > 0) out.append(el('p', { text: t('setup.mb.quota', { used: bytes(r.quota.used), limit: bytes(r.quota.limit) }) }));
          else out.append(el('p', { class: 'hint', text: t('setup.mb.noQuota') }));
          const su = Object.entries(r.special_use || {});
          if (su.length) {
            const ul = el('ul');
            for (const [attr, name] of su) ul.append(el('li', { text: t('special.' + attr.replace('\\', '')) + ': ' + name }));
            out.append(el('p', { text: t('setup.mb.special') }), ul);
          }
        } else {
          out.append(el('p', { class: 'error', text: t('upstream.' + r.kind, { host: r.host, port: r.port }) }),
            el('p', { class: 'hint', text: inLang(r.texts) || r.detail }));
        }
      } catch (e) {
        clear(out).append(el('p', { class: 'error', text: errText(e) }));
      }
    });
    $('mb-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = upstreamForm();
      status('mb-result', t('saving'));
      try {
        set = await api('POST', '/api/settings', { upstream: f });
        const acct = { email: mb.email.value.trim() };
        if (preset && preset.found && preset.smtp_host) {
          Object.assign(acct, { smtp_host: preset.smtp_host, smtp_port: preset.smtp_port, smtp_tls: preset.smtp_tls, smtp_username: preset.username || acct.email });
        }
        if (acct.email) await api('POST', '/api/devices/account', acct).catch(() => {});
        mb.pass.value = '';
        $('mb-password-saved').hidden = false;
        status('mb-result', t('saved'), 'ok');
        markDone();
        step3Enter();
        show(3);
      } catch (e) {
        status('mb-result', errText(e), 'error');
      }
    });
    $('mb-skip').addEventListener('click', () => { step3Enter(); show(3); });

    // Step 3: the old POP account.
    const pop = { on: $('pop-on'), fields: $('pop-fields'), host: $('pop-host'), port: $('pop-port'), tls: $('pop-tls'), user: $('pop-username'), pass: $('pop-password') };
    const old = set.pop3[0];
    // The setup shows one POP account; any others (from the configuration
    // file) are sent back as they are, so that saving never drops them.
    const others = set.pop3.slice(1);
    const keepAsIs = (p) => ({
      old_name: p.name, name: p.name, host: p.host, port: p.port, tls: p.tls, username: p.username, password: '',
      leave_on_server: p.leave_on_server, delete_after_days: p.delete_after_days || 0, deliver_to: p.deliver_to,
    });
    if (others.length) {
      $('pop-others').hidden = false;
      setText('pop-others', t('setup.pop.others', { names: others.map((p) => p.name).join(', ') }));
    }
    pop.on.addEventListener('change', () => { pop.fields.disabled = !pop.on.checked; });
    pop.tls.addEventListener('change', () => { pop.port.value = defPort(pop.tls.value, false); });
    if (old) {
      pop.on.checked = true;
      pop.host.value = old.host;
      pop.port.value = old.port;
      pop.tls.value = old.tls;
      pop.user.value = old.username;
      $('pop-password-saved').hidden = !old.password_set;
      if (old.oauth2) {
        $('pop-oauth').hidden = false;
        setText('pop-oauth', t('setup.pop.oauth', { provider: { microsoft: 'Microsoft', google: 'Google' }[old.oauth2] || old.oauth2 }));
      }
      const keep = old.leave_on_server ? (old.delete_after_days ? 'days' : 'keep') : 'delete';
      document.querySelector('input[name="pop-keep"][value="' + keep + '"]').checked = true;
      if (old.delete_after_days) $('pop-days').value = old.delete_after_days;
      $('pop-deliver').value = old.deliver_to === 'INBOX' ? 'INBOX' : 'local';
    }
    pop.fields.disabled = !pop.on.checked;
    function step3Enter() {
      if (!set.upstream) {
        const o = document.querySelector('#pop-deliver option[value="INBOX"]');
        if (o) o.disabled = true;
        $('pop-deliver').value = 'local';
      } else {
        const o = document.querySelector('#pop-deliver option[value="INBOX"]');
        if (o) o.disabled = false;
      }
      if (!old && preset && preset.found && preset.pop_host && !pop.host.value) {
        pop.host.value = preset.pop_host;
        pop.port.value = preset.pop_port;
        pop.tls.value = preset.pop_tls;
        pop.user.value = preset.username || mb.email.value;
      }
      if (!pop.port.value) pop.port.value = defPort(pop.tls.value, false);
    }
    step3Enter();
    $('pop-test').addEventListener('click', async () => {
      const out = clear($('pop-result'));
      out.append(el('p', { class: 'hint', text: t('setup.pop.testing') }));
      try {
        const r = await api('POST', '/api/pop3/test', {
          host: pop.host.value.trim(), port: Number(pop.port.value) || 0, tls: pop.tls.value, username: pop.user.value.trim(), password: pop.pass.value,
        });
        clear(out);
        if (r.ok) {
          out.append(el('p', { class: 'result-ok', text: t('setup.pop.ok', { host: r.host, messages: num(r.messages), size: bytes(r.bytes) }) }));
        } else {
          out.append(el('p', { class: 'error', text: t('pop.' + r.kind, { host: r.host, port: r.port }) }), el('p', { class: 'hint', text: r.detail }));
        }
      } catch (e) {
        clear(out).append(el('p', { class: 'error', text: errText(e) }));
      }
    });
    $('pop-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let list = others.map(keepAsIs);
      if (pop.on.checked) {
        const keep = document.querySelector('input[name="pop-keep"]:checked').value;
        list.unshift({
          old_name: old ? old.name : '', name: old ? old.name : '', host: pop.host.value.trim(), port: Number(pop.port.value) || 0, tls: pop.tls.value,
          username: pop.user.value.trim(), password: pop.pass.value, leave_on_server: keep !== 'delete',
          delete_after_days: keep === 'days' ? Number($('pop-days').value) || 0 : 0,
          deliver_to: $('pop-deliver').value === 'INBOX' ? 'INBOX' : '',
        });
      }
      status('pop-status', t('saving'));
      try {
        set = await api('POST', '/api/settings', { pop3: list });
        pop.pass.value = '';
        status('pop-status', t('saved'), 'ok');
        markDone();
        show(4);
      } catch (e) {
        status('pop-status', errText(e), 'error');
      }
    });

    // Step 4: the device password.
    function step4Enter() {
      const u = set.users[0];
      setText('dp-user', u ? u.name : (set.upstream && set.upstream.username.includes('@') ? set.upstream.username : (mb.email.value || 'me')));
      $('dp-has').hidden = !set.configured;
    }
    const setPassword = async (password) => {
      status('dp-status', t('saving'));
      try {
        const r = await api('POST', '/api/device-password', password ? { password } : {});
        setText('dp-user', r.user);
        if (!password) {
          setText('dp-value', r.password);
          $('dp-shown').hidden = false;
        }
        set = await api('GET', '/api/settings');
        markDone();
        status('dp-status', t('setup.dp.saved'), 'ok');
      } catch (e) {
        status('dp-status', errText(e), 'error');
      }
    };
    $('dp-generate').addEventListener('click', () => setPassword(''));
    $('dp-set').addEventListener('click', () => {
      const v = $('dp-own').value;
      if (v.length < 8) { status('dp-status', t('error.weak-password', { min: 8 }), 'error'); return; }
      $('dp-own').value = '';
      setPassword(v);
    });
    $('finish').addEventListener('click', () => {
      if (!set.configured) { status('dp-status', t('setup.dp.needed'), 'error'); return; }
      location.href = '/';
    });

    const m = /^#step-([1-4])$/.exec(location.hash);
    show(m ? Number(m[1]) : 1);
  }

  // ---------------------------------------------------------------------
  // Move to the server

  async function movePage() {
    const set = await api('GET', '/api/settings');
    const noUp = !set.upstream;
    $('no-upstream').hidden = !noUp;
    for (const id of ['plan-btn', 'mig-start', 'verify-btn']) $(id).disabled = noUp;
    const request = () => {
      const scope = document.querySelector('input[name="scope"]:checked').value;
      const r = { move: $('move-hide').checked };
      if (scope === 'years') r.years = Math.max(1, Number($('years').value) || 1);
      return r;
    };
    const renderPlan = (p) => {
      const out = clear($('plan-out'));
      const tb = el('tbody');
      let inScope = 0, on = 0, up = 0, size = 0, upSize = 0;
      for (const f of p.folders || []) {
        inScope += f.in_scope; on += f.on_server; up += f.to_upload; size += f.bytes; upSize += f.upload_bytes;
        tb.append(el('tr', {},
          el('td', { text: f.source }),
          el('td', { text: f.target + (f.create ? ' ' + t('move.newFolder') : '') }),
          el('td', { class: 'num', text: num(f.in_scope) }),
          el('td', { class: 'num', text: bytes(f.bytes) }),
          el('td', { class: 'num', text: num(f.on_server) }),
          el('td', { class: 'num', text: num(f.to_upload) }),
          el('td', { class: 'num', text: bytes(f.upload_bytes) })));
      }
      out.append(el('div', { class: 'scroll' }, el('table', { id: 'plan-table' },
        el('thead', {}, el('tr', {}, ...['move.col.from', 'move.col.to', 'move.col.scope', 'move.col.size', 'move.col.on', 'move.col.up', 'move.col.upSize']
          .map((k, i) => el('th', { scope: 'col', class: i >= 2 ? 'num' : '', text: t(k) })))),
        tb,
        el('tfoot', {}, el('tr', {}, el('td', { text: t('move.total') }), el('td'),
          el('td', { class: 'num', text: num(inScope) }), el('td', { class: 'num', text: bytes(size) }),
          el('td', { class: 'num', text: num(on) }), el('td', { class: 'num', text: num(up) }), el('td', { class: 'num', text: bytes(upSize) }))))));
      if (!(p.folders || []).length) out.append(el('p', { text: t('move.nothing') }));
      if (p.quota_known) {
        out.append(el('p', { text: t('move.quota', { used: bytes(p.quota_used), limit: bytes(p.quota_limit), after: bytes(p.quota_used + p.need) }) }));
        if (!p.fits) {
          const d = fitDate(p);
          out.append(el('p', { class: 'error', text: t('move.noFit', { need: bytes(p.need), free: bytes(Math.max(0, p.quota_limit - p.quota_used)) }) + (d ? ' ' + t('move.fitHint', { date: d }) : '') }));
        } else {
          out.append(el('p', { class: 'result-ok', text: t('move.fits') }));
        }
      } else {
        out.append(el('p', { class: 'hint', text: t('move.quotaUnknown') }));
      }
    };
    $('plan-btn').addEventListener('click', async () => {
      status('plan-status', t('move.planning'));
      try {
        renderPlan(await api('POST', '/api/plan', request()));
        status('plan-status', '');
      } catch (e) {
        status('plan-status', errText(e), 'error');
      }
    });

    const renderMig = (st) => {
      $('mig-bar').value = migFraction(st);
      setText('mig-status', migText(st));
      const running = st.state === 'running' || st.state === 'pausing';
      $('mig-start').hidden = running || st.state === 'paused';
      $('mig-pause').hidden = !running;
      $('mig-pause').disabled = st.state === 'pausing';
      $('mig-resume').hidden = !['paused', 'incomplete', 'failed'].includes(st.state);
      let detail = '';
      if (running && st.folder) detail = t('move.folder', { folder: st.folder, done: num(st.folder_done), total: num(st.folder_total) });
      if (st.elapsed > 0) detail += (detail ? ' · ' : '') + t('move.elapsed', { time: duration(st.elapsed) });
      if (st.state === 'incomplete' && st.result) {
        let failed = 0;
        for (const f of st.result.folders || []) failed += f.failed;
        if (failed) detail += ' ' + t('move.failed', { n: num(failed) });
      }
      setText('mig-detail', detail);
      const err = $('mig-error');
      err.hidden = !st.error;
      if (st.error) {
        const key = 'error.' + (st.code || '');
        err.textContent = (Object.prototype.hasOwnProperty.call(I18N, key) ? t(key) + ' ' : '') + st.error;
      }
      if (st.plan && !$('plan-table')) renderPlan(st.plan);
    };
    const act = (path, data) => async () => {
      $('mig-error').hidden = true;
      try {
        renderMig(await api('POST', path, data ? data() : undefined));
      } catch (e) {
        $('mig-error').hidden = false;
        $('mig-error').textContent = errText(e);
      }
    };
    $('mig-start').addEventListener('click', act('/api/migration/start', request));
    $('mig-pause').addEventListener('click', act('/api/migration/pause'));
    $('mig-resume').addEventListener('click', act('/api/migration/resume'));

    const renderVerify = (v) => {
      const out = clear($('verify-out'));
      $('csv-link').hidden = true;
      $('next-steps').hidden = true;
      $('verify-btn').disabled = noUp || v.state === 'running';
      switch (v.state) {
        case 'running':
          out.append(el('p', { text: t('move.verifying') }));
          if (v.progress && v.progress.total) {
            out.append(el('p', { text: t('move.verifyProgress', { folder: v.progress.folder, done: num(v.progress.done), total: num(v.progress.total) }) }));
          }
          break;
        case 'failed':
          out.append(el('p', { class: 'error', text: t('move.verifyFailed') + ' ' + (v.error || '') }));
          break;
        case 'done': {
          const rep = v.report || { folders: [], missing: [] };
          let inScope = 0;
          for (const f of rep.folders || []) inScope += f.in_scope;
          if (rep.ok) {
            out.append(el('p', { class: 'result-ok', text: t('move.verifiedOk', { n: num(inScope), when: when(v.finished) }) }));
            out.append(el('p', { class: 'hint', text: rep.content ? t('move.verifiedByContent') : t('move.verifiedBySize') }));
            $('next-steps').hidden = false;
          } else {
            out.append(el('p', { class: 'error', text: t('move.verifiedMissing', { n: num(v.missing), total: num(inScope), when: when(v.finished) }) }));
            const ul = el('ul');
            for (const m of (rep.missing || []).slice(0, 10)) {
              ul.append(el('li', { text: t('move.missingLine', { folder: m.folder, date: when(m.date), from: m.from || '?', subject: m.subject || '' }) }));
            }
            out.append(ul, el('p', { class: 'hint', text: t('move.missingNext') }));
          }
          $('csv-link').hidden = false;
          break;
        }
        default:
          out.append(el('p', { class: 'hint', text: t('move.notVerified') }));
      }
    };
    $('verify-btn').addEventListener('click', async () => {
      try {
        const st = await api('GET', '/api/migration');
        const req = Object.assign({}, st.request && st.state !== 'idle' ? st.request : request());
        req.content = $('verify-content').checked;
        renderVerify(await api('POST', '/api/verify/start', req));
      } catch (e) {
        clear($('verify-out')).append(el('p', { class: 'error', text: errText(e) }));
      }
    });

    const fetchState = () => {
      api('GET', '/api/migration').then(renderMig).catch((e) => status('mig-status', errText(e), 'error'));
      api('GET', '/api/verify/state').then(renderVerify).catch(() => {});
    };
    live({
      open: fetchState,
      migration: (ev) => renderMig(ev.migration),
      verify: (ev) => renderVerify(ev.verify),
    });
    fetchState();
  }

  // ---------------------------------------------------------------------
  // Devices

  async function devicesPage() {
    let d;
    const fail = (e) => { $('dev-error').hidden = false; $('dev-error').textContent = errText(e); };
    const render = () => {
      setText('dev-user', d.user || t('dev.noUser'));
      $('lan-switch').checked = d.lan;
      const sel = $('host-select');
      const keep = sel.value;
      clear(sel);
      for (const h of d.hosts) sel.append(el('option', { value: h, text: h === '127.0.0.1' ? t('dev.thisComputer', { host: h }) : h }));
      if (d.hosts.includes(keep)) sel.value = keep;
      setText('host-hint', d.lan ? t('dev.hostHintLAN') : t('dev.hostHintLocal'));
      renderHost();
      // popbridge's CA to download, or (the user's own certificate) why
      // there is none.
      const hasCA = !!d.ca_fingerprint;
      $('ca').hidden = !hasCA && !d.own_cert;
      $('ca-offer').hidden = !hasCA;
      setText('ca-fp', d.ca_fingerprint || '');
      $('server-fp-box').hidden = !(hasCA && d.server_fingerprint && d.server_fingerprint !== d.ca_fingerprint);
      setText('server-fp', d.server_fingerprint || '');
      $('ca-own').hidden = hasCA || !d.own_cert;
      setText('ca-own-text', d.own_cert ? t('dev.ca.own', { file: d.own_cert }) : '');
      setText('own-fp', d.own_cert_fingerprint || '');
      for (const e of document.querySelectorAll('.ca-steps')) e.hidden = !hasCA;
      $('profile-problem').hidden = d.can_profile;
      $('profile-problem').textContent = d.can_profile ? '' : t('dev.apple.cannot') + ' ' + (d.profile_problem || '');
      $('profile-link').hidden = !d.can_profile;
      const a = d.account || {};
      $('acct-email').value = a.email || '';
      $('acct-name').value = a.display_name || '';
      $('acct-smtp-host').value = a.smtp_host || '';
      $('acct-smtp-port').value = a.smtp_port || '';
      $('acct-smtp-tls').value = a.smtp_tls || '';
      $('acct-smtp-user').value = a.smtp_username || '';
    };
    const renderHost = () => {
      const host = $('host-select').value;
      const box = clear($('listeners'));
      const order = [...d.listeners].sort((a, b) => (a.kind === 'imaps' ? -1 : 1) - (b.kind === 'imaps' ? -1 : 1));
      for (const l of order) {
        const row = (label, value) => [el('dt', { text: label }), el('dd', {}, el('code', { text: value }), el('button', { type: 'button', class: 'copy', 'data-copy-text': value, text: t('copy') }))];
        const qs = 'host=' + encodeURIComponent(host) + '&listener=' + l.kind;
        box.append(el('div', { class: 'listener' },
          el('h3', { text: t('dev.listener.' + l.kind) }),
          el('dl', {},
            ...row(t('dev.server'), host),
            ...row(t('setup.mb.port'), String(l.port)),
            ...row(t('setup.mb.security'), l.kind === 'imaps' ? t('tls.implicit') : t('tls.starttls')),
            ...row(t('setup.mb.username'), d.user || '')),
          el('p', { class: 'hint', text: t('dev.passwordIs') }),
          d.user ? el('img', { src: '/api/devices/qr.png?' + qs + '&kind=settings', alt: t('dev.qrAlt'), width: '264', height: '264' }) : null,
          d.user ? el('p', { class: 'hint', text: t('dev.qrHint') }) : null));
      }
      if (!d.listeners.length) box.append(el('p', { class: 'error', text: t('dev.noListener') }));
      const imaps = d.listeners.find((l) => l.kind === 'imaps') || d.listeners[0];
      $('profile-link').href = '/devices/popbridge.mobileconfig?host=' + encodeURIComponent(host);
      const tb = $('tb-qr');
      $('tb-qr-box').hidden = !(d.can_profile && imaps);
      if (d.can_profile && imaps) {
        tb.src = '/api/devices/qr.png?host=' + encodeURIComponent(host) + '&listener=' + imaps.kind + '&kind=thunderbird';
      }
    };
    $('tb-qr').addEventListener('error', () => { $('tb-qr-box').hidden = true; });
    $('host-select').addEventListener('change', renderHost);
    $('lan-switch').addEventListener('change', async () => {
      const on = $('lan-switch').checked;
      status('lan-status', t('dev.lanApplying'));
      try {
        await api('POST', '/api/settings', { lan: on });
        d = await api('GET', '/api/devices');
        render();
        status('lan-status', on ? t('dev.lanOn') : t('dev.lanOff'), 'ok');
      } catch (e) {
        $('lan-switch').checked = !on;
        status('lan-status', errText(e), 'error');
      }
    });
    $('acct-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      status('acct-status', t('saving'));
      try {
        d = await api('POST', '/api/devices/account', {
          email: $('acct-email').value.trim(), display_name: $('acct-name').value.trim(), smtp_host: $('acct-smtp-host').value.trim(),
          smtp_port: Number($('acct-smtp-port').value) || 0, smtp_tls: $('acct-smtp-tls').value, smtp_username: $('acct-smtp-user').value.trim(),
        });
        render();
        status('acct-status', t('saved'), 'ok');
      } catch (e) {
        status('acct-status', errText(e), 'error');
      }
    });
    try {
      d = await api('GET', '/api/devices');
      render();
    } catch (e) {
      fail(e);
    }
  }

  // ---------------------------------------------------------------------
  // Stopping popbridge

  // gone waits until the console no longer answers (popbridge has
  // stopped): true, or false when it still answers after half a minute.
  async function gone() {
    for (let i = 0; i < 120; i++) {
      try {
        await fetch('/static/console.css', { cache: 'no-store', credentials: 'same-origin' });
      } catch (e) {
        return true;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }
  // disableConsole takes away what no longer works: the links and forms
  // of the header lead nowhere once popbridge has stopped.
  function disableConsole() {
    for (const id of ['lang-form', 'quit-link']) { const e = $(id); if (e) e.hidden = true; }
    const nav = document.querySelector('header.top nav');
    if (nav) nav.hidden = true;
  }
  // showStopped replaces the page with the news that popbridge stopped,
  // and how it comes back.
  function showStopped(autostartOn) {
    disableConsole();
    document.title = t('stopped.title') + ' · popbridge';
    clear($('main')).append(el('section', { id: 'stopped', role: 'status' },
      el('h1', { text: t('stopped.title') }),
      el('p', { class: 'result-ok', text: t('stopped.text') }),
      el('p', { text: t('set.quitStart') }),
      autostartOn ? el('p', { text: t('set.quitAutostartOn') }) : null));
  }

  // ---------------------------------------------------------------------
  // Settings

  async function settingsPage() {
    try {
      const set = await api('GET', '/api/settings');
      setText('cfg-path', set.config_path);
      setText('data-dir', set.data_dir);
    } catch (e) { /* shown as empty */ }
    let sys;
    try { sys = await api('GET', '/api/system'); } catch (e) { return; }

    // Start with this computer.
    const renderAutostart = (s) => {
      $('autostart').checked = !!s.autostart;
      const where = $('autostart-where');
      where.hidden = !(s.autostart && s.autostart_where);
      where.textContent = s.autostart && s.autostart_where ? t('set.autostartWhere', { where: s.autostart_where }) : '';
      const probs = clear($('autostart-problems'));
      for (const p of s.autostart_problems || []) probs.append(el('li', { class: 'warn', text: t('autostart.problem.' + p.code, p.params || {}) }));
      probs.hidden = !(s.autostart_problems || []).length;
      const notes = clear($('autostart-notes'));
      for (const n of s.autostart_notes || []) notes.append(el('li', { text: t('autostart.note.' + n.code) }));
      notes.hidden = !(s.autostart_notes || []).length;
      if (s.autostart_error) status('autostart-status', t('set.autostartUnknown') + ' ' + s.autostart_error, 'error');
    };
    if (sys.autostart !== undefined && sys.autostart !== null) {
      $('autostart-section').hidden = false;
      renderAutostart(sys);
      $('autostart').addEventListener('change', async () => {
        const want = $('autostart').checked;
        status('autostart-status', t('saving'));
        try {
          const s = await api('POST', '/api/system', { autostart: want });
          renderAutostart(s);
          status('autostart-status', s.autostart ? t('set.autostartOn') : t('set.autostartOff'), 'ok');
        } catch (e) {
          $('autostart').checked = !want;
          const reason = (e.params || {}).reason;
          status('autostart-status', reason ? t('autostart.error.' + reason) + ' (' + e.message + ')' : errText(e), 'error');
        }
      });
    }

    // The log.
    if (sys.log_file) {
      $('log-dt').hidden = false;
      $('log-dd').hidden = false;
      setText('log-file', sys.log_file);
      $('log-section').hidden = false;
      $('log-show').addEventListener('click', async () => {
        status('log-status', t('set.logLoading'));
        try {
          const l = await api('GET', '/api/system/log?lines=300');
          const pre = $('log-lines');
          pre.hidden = false;
          pre.textContent = l.lines.join('\n');
          pre.scrollTop = pre.scrollHeight;
          status('log-status', l.lines.length ? t('set.logShown', { n: num(l.lines.length) }) : t('set.logEmpty'));
          $('log-show').textContent = t('set.logRefresh');
        } catch (e) {
          status('log-status', errText(e), 'error');
        }
      });
    }

    // Quit popbridge: a plain confirmation, then the page says when it
    // has stopped (the console goes with it).
    if (sys.quit) {
      $('quit').hidden = false;
      if (location.hash === '#quit') $('quit').scrollIntoView();
      // Whether it comes back by itself at the next login (null: this
      // system has no such switch).
      let autostartOn = sys.autostart;
      $('quit-btn').addEventListener('click', async () => {
        try { autostartOn = (await api('GET', '/api/system')).autostart; } catch (e) { /* as last seen */ }
        const known = autostartOn !== undefined && autostartOn !== null;
        $('quit-autostart').hidden = !known;
        setText('quit-autostart', !known ? '' : autostartOn ? t('set.quitAutostartOn') : t('set.quitAutostartOff'));
        $('quit-confirm-box').hidden = false;
        $('quit-btn').hidden = true;
        status('quit-status', '');
        $('quit-confirm').focus();
      });
      $('quit-cancel').addEventListener('click', () => {
        $('quit-confirm-box').hidden = true;
        $('quit-btn').hidden = false;
      });
      $('quit-confirm').addEventListener('click', async () => {
        $('quit-confirm').disabled = true;
        status('quit-status', t('set.quitting'));
        try {
          await api('POST', '/api/system', { quit: true });
        } catch (e) {
          $('quit-confirm').disabled = false;
          status('quit-status', errText(e), 'error');
          return;
        }
        if (await gone()) {
          showStopped(!!autostartOn);
        } else {
          status('quit-status', t('set.stillRunning'), 'error');
        }
      });
    }

    // Remove popbridge: first what it would remove and what stays, then
    // the confirmation.
    if (sys.uninstall) {
      $('uninstall-section').hidden = false;
      let plan = null;
      // Deleting the data needs popbridge stopped: the quit box is then
      // ticked and fixed.
      let quitWanted = true;
      const syncQuit = () => {
        const forced = $('remove-data').checked;
        $('uninstall-quit').disabled = forced;
        $('uninstall-quit').checked = forced || quitWanted;
        $('uninstall-quit-forced').hidden = !forced;
      };
      const renderPlan = () => {
        const removeData = $('remove-data').checked;
        const quit = $('uninstall-quit').checked;
        const rm = clear($('uninstall-removes'));
        const keep = clear($('uninstall-keeps'));
        rm.append(el('li', { text: plan.autostart_on ? t('uninstall.rm.autostart', { where: plan.autostart_where || '' }) : t('uninstall.rm.noAutostart') }));
        const refused = removeData && plan.data_exists && plan.refused_code;
        if (removeData && plan.data_exists && !refused) {
          rm.append(el('li', { text: t('uninstall.rm.data', { dir: plan.data_dir, size: bytes(plan.data_bytes) }) }));
        }
        if (quit) rm.append(el('li', { text: t('uninstall.rm.stop') }));
        for (const a of plan.archives || []) keep.append(el('li', { text: t('uninstall.keep.archive', { path: a }) }));
        keep.append(el('li', { text: t('uninstall.keep.server') }));
        if (plan.data_exists && (!removeData || refused)) keep.append(el('li', { text: t('uninstall.keep.data', { dir: plan.data_dir }) }));
        if (plan.config) keep.append(el('li', { text: t('uninstall.keep.config', { path: plan.config }) }));
        if (plan.program) keep.append(el('li', { text: t('uninstall.keep.program', { path: plan.program }) }));
        if (!quit) keep.append(el('li', { text: t('uninstall.keep.running') }));
        const r = $('uninstall-refused');
        r.hidden = !refused;
        r.textContent = refused ? t('uninstall.refused.' + plan.refused_code) + ' (' + plan.refused + ')' : '';
        const warn = removeData && !refused && plan.own_messages > 0;
        const w = $('uninstall-warn');
        w.hidden = !warn;
        w.textContent = warn ? t('uninstall.ownMessages', { n: num(plan.own_messages) }) : '';
        $('uninstall-confirm').disabled = !!refused;
      };
      $('uninstall-btn').addEventListener('click', async () => {
        status('uninstall-status', '');
        try {
          plan = await api('GET', '/api/system/uninstall');
        } catch (e) {
          status('uninstall-status', errText(e), 'error');
          return;
        }
        renderPlan();
        $('uninstall-plan').hidden = false;
        $('uninstall-btn').hidden = true;
      });
      $('remove-data').addEventListener('change', () => { syncQuit(); if (plan) renderPlan(); });
      $('uninstall-quit').addEventListener('change', () => {
        if (!$('uninstall-quit').disabled) quitWanted = $('uninstall-quit').checked;
        if (plan) renderPlan();
      });
      syncQuit();
      $('uninstall-cancel').addEventListener('click', () => {
        $('uninstall-plan').hidden = true;
        $('uninstall-btn').hidden = false;
      });
      $('uninstall-confirm').addEventListener('click', async () => {
        $('uninstall-confirm').disabled = true;
        status('uninstall-status', t('set.uninstalling'));
        try {
          const s = await api('POST', '/api/system', { uninstall: true, remove_data: $('remove-data').checked, quit: $('uninstall-quit').checked });
          const u = s.uninstalled || {};
          $('uninstall-plan').hidden = true;
          const done = clear($('uninstall-done'));
          done.hidden = false;
          if ((u.removed || []).length) done.append(el('li', { text: t('uninstall.done.autostart') }));
          if (u.data_dir) done.append(el('li', { text: t('uninstall.done.data', { dir: u.data_dir }) }));
          if (!s.stopping) {
            done.append(el('li', { text: t('uninstall.done.running') }));
            status('uninstall-status', t('set.uninstalledRunning'), 'ok');
            $('uninstall-btn').hidden = false;
            $('uninstall-confirm').disabled = false;
            return;
          }
          done.append(el('li', { text: t('uninstall.done.stopped') }));
          status('uninstall-status', t('set.uninstalledStopping'));
          if (await gone()) {
            status('uninstall-status', t('set.uninstalled'), 'ok');
            disableConsole();
          } else {
            status('uninstall-status', t('set.stillRunning'), 'error');
          }
        } catch (e) {
          $('uninstall-confirm').disabled = false;
          status('uninstall-status', errText(e), 'error');
        }
      });
    }
  }

  const pages = { dashboard: dashboardPage, setup: setupPage, move: movePage, devices: devicesPage, settings: settingsPage };
  const run = pages[body.dataset.page];
  if (run) {
    run().catch((e) => {
      const main = $('main');
      main.prepend(el('div', { class: 'banner bad', role: 'alert', text: errText(e) }));
    });
  }
})();
