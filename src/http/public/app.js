// The Background Task Manager page: plain DOM over the JSON API (no build step, no inline
// script, so the strict Content-Security-Policy holds). Grids refresh themselves every 3 s.
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const REFRESH_MS = 3000;

let session;
let timers = [];
let methods = { available: [], disabled: [] };
let dataSources = [];

// ---------- API ----------
class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, url, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session?.csrfToken) headers['X-CSRF-Token'] = session.csrfToken;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const data = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  if (res.status === 401 && url !== '/api/login') {
    showLogin();
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}
const enc = encodeURIComponent;
const qs = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== '')).toString();

// ---------- small helpers ----------
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function flash(message, kind = 'error') {
  const f = $('#flash');
  f.textContent = message;
  f.className = kind;
  f.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (f.hidden = true), 6000);
}

function ago(iso) {
  if (!iso) return '';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return `in ${dur(-s * 1000)}`;
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
function dur(ms) {
  if (ms === undefined || ms === null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}
const time = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const keysText = (t) => (t.registryObjectKeys?.length ? t.registryObjectKeys.slice(0, 3).join(', ') + (t.keyCount > 3 ? ` (+${t.keyCount - 3})` : '') : '');
const taskLink = (id) => (id ? el('a', { href: `#/tasks/${enc(id)}`, class: 'task-link' }, id) : '');
const statusBadge = (s) => el('span', { class: `status status-${(s ?? '').toLowerCase()}` }, s ?? '');

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
}
function every(ms, fn) {
  fn();
  timers.push(setInterval(fn, ms));
}
const isAdmin = () => session?.role === 'admin';

// ---------- sign in ----------
function showOnly(id) {
  for (const s of $$('main > section')) s.hidden = s.id !== id;
  for (const a of $$('#nav a')) a.classList.toggle('current', `view-${a.dataset.view}` === id || (id === 'view-record' && a.dataset.view === 'records'));
}

function showLogin() {
  stopTimers();
  session = undefined;
  $('#nav').hidden = true;
  $('#who').hidden = true;
  showOnly('view-login');
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    session = await api('POST', '/api/login', { user: f.get('user'), password: f.get('password') });
    ev.target.reset();
    await afterSignIn();
  } catch (err) {
    flash(err.message);
  }
});

$('#sign-out').addEventListener('click', async () => {
  await api('POST', '/api/logout').catch(() => undefined);
  showLogin();
});

async function afterSignIn() {
  const s = await api('GET', '/api/session');
  session = { ...session, ...s, csrfToken: s.csrfToken ?? session?.csrfToken };
  $('#who-name').textContent = `${session.user} (${session.role})`;
  $('#nav').hidden = false;
  $('#who').hidden = false;
  document.body.classList.toggle('read-only', !isAdmin());
  [methods, dataSources] = await Promise.all([api('GET', '/api/methods'), api('GET', '/api/data-sources')]);
  fillSelect($('#task-filters [name=method]'), methods.available, 'any');
  fillSelect(
    $('#task-filters [name=dataSource]'),
    dataSources.map((d) => d.key),
    'any',
  );
  fillSelect(
    $('#record-filters [name=dataSource]'),
    dataSources.map((d) => d.key),
    'any',
  );
  fillSelect($('#add-form [name=method]'), methods.available);
  fillSelect(
    $('#add-form [name=dataSourceKey]'),
    dataSources.map((d) => d.key),
    '(none)',
  );
  route();
}

function fillSelect(select, values, emptyLabel) {
  const current = select.value;
  select.replaceChildren(...(emptyLabel ? [el('option', { value: '' }, emptyLabel)] : []), ...values.map((v) => el('option', { value: v }, v)));
  if (values.includes(current)) select.value = current;
}

// ---------- routing ----------
window.addEventListener('hashchange', () => session && route());

function route() {
  stopTimers();
  const hash = location.hash.slice(1) || '/tasks';
  const [, view, ...rest] = hash.split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  if (view === 'data-sources') return showDataSources();
  if (view === 'health') return showHealth();
  if (view === 'records' && arg) return showRecord(arg);
  if (view === 'records') return showRecords();
  showTasks();
  if (view === 'tasks' && arg) openTask(arg);
}

// ---------- tasks ----------
const GRIDS = {
  queued: { statuses: ['WAITING', 'STARTED'], row: queuedRow },
  completed: { statuses: ['COMPLETED', 'CANCELLED'], row: completedRow },
  failed: { statuses: ['FAILED'], row: failedRow },
};
const pages = { queued: [undefined], completed: [undefined], failed: [undefined] };

function taskFilters() {
  const f = new FormData($('#task-filters'));
  return { method: f.get('method'), dataSource: f.get('dataSource'), status: f.get('status'), text: f.get('text')?.trim() };
}

function showTasks() {
  showOnly('view-tasks');
  every(REFRESH_MS, refreshGrids);
}

async function refreshGrids() {
  await Promise.all(Object.keys(GRIDS).map(refreshGrid));
}

async function refreshGrid(name) {
  const grid = $(`[data-grid=${name}]`);
  const filters = taskFilters();
  const statuses = GRIDS[name].statuses.filter((s) => !filters.status || s === filters.status);
  grid.hidden = statuses.length === 0;
  if (grid.hidden) return;
  const stack = pages[name];
  try {
    const res = await api('GET', `/api/tasks?${qs({ ...filters, status: statuses.join(','), pageSize: 20, pageToken: stack[stack.length - 1] })}`);
    $('tbody', grid).replaceChildren(
      ...(res.tasks.length ? res.tasks.map(GRIDS[name].row) : [el('tr', {}, el('td', { colspan: 11, class: 'empty' }, 'none'))]),
    );
    grid.dataset.next = res.nextPageToken ?? '';
    $('.next', grid).disabled = !res.nextPageToken;
    $('.first', grid).disabled = stack.length === 1;
  } catch (err) {
    if (err.status !== 401) flash(`could not list tasks: ${err.message}`);
  }
}

for (const name of Object.keys(GRIDS)) {
  const grid = $(`[data-grid=${name}]`);
  $('.refresh', grid).addEventListener('click', () => refreshGrid(name));
  $('.next', grid).addEventListener('click', () => {
    if (grid.dataset.next) pages[name].push(grid.dataset.next);
    refreshGrid(name);
  });
  $('.first', grid).addEventListener('click', () => {
    pages[name] = [undefined];
    refreshGrid(name);
  });
}
$('#task-filters').addEventListener('change', () => {
  for (const k of Object.keys(pages)) pages[k] = [undefined];
  refreshGrids();
});
$('#task-filters').addEventListener('submit', (ev) => ev.preventDefault());
$('#task-filters [name=text]').addEventListener('input', () => {
  clearTimeout(refreshGrids.debounce);
  refreshGrids.debounce = setTimeout(refreshGrids, 300);
});

function rowFor(t, cells) {
  return el(
    'tr',
    { dataset: { taskId: t.taskId, status: t.status ?? '' } },
    cells.map((c) => el('td', {}, c)),
  );
}

function queuedRow(t) {
  const waiting = t.status === 'WAITING' ? (t.waitingFor ?? []).join(' and ') : '';
  const actions = isAdmin()
    ? [
        el('button', { type: 'button', class: 'small', onclick: () => cancelTask(t.taskId) }, 'Cancel'),
        t.status === 'WAITING' ? el('button', { type: 'button', class: 'small', onclick: () => openReschedule(t.taskId) }, 'Reschedule') : '',
      ]
    : [];
  return rowFor(t, [
    taskLink(t.taskId),
    taskLink(t.prerequisiteTaskId),
    t.method,
    ago(t.addedAt),
    waiting,
    time(t.scheduledFor),
    statusBadge(t.status),
    t.dataSourceKey ?? '',
    keysText(t),
    t.logMessage ?? '',
    actions,
  ]);
}
function completedRow(t) {
  return rowFor(t, [
    taskLink(t.taskId),
    taskLink(t.prerequisiteTaskId),
    t.method,
    ago(t.completedAt ?? t.closedAt),
    dur(t.durationMs),
    statusBadge(t.status),
    t.dataSourceKey ?? '',
    keysText(t),
    t.logMessage ?? '',
  ]);
}
function failedRow(t) {
  const actions = isAdmin() ? el('button', { type: 'button', class: 'small', onclick: () => retryTask(t.taskId) }, 'Retry') : '';
  return rowFor(t, [
    taskLink(t.taskId),
    t.method,
    time(t.addedAt),
    time(t.startedAt),
    time(t.completedAt ?? t.closedAt),
    el('span', { class: 'error' }, t.error ?? ''),
    t.dataSourceKey ?? '',
    keysText(t),
    actions,
  ]);
}

async function cancelTask(id) {
  try {
    await api('POST', `/api/tasks/${enc(id)}/cancel`);
    flash(`cancelled ${id}`, 'ok');
    refreshGrids();
  } catch (err) {
    flash(err.message);
  }
}
async function retryTask(id) {
  try {
    const { taskId } = await api('POST', `/api/tasks/${enc(id)}/retry`);
    flash(`added ${taskId} with the same inputs`, 'ok');
    refreshGrids();
  } catch (err) {
    flash(err.message);
  }
}

$('#flush-completed').addEventListener('click', async () => {
  try {
    const { deleted } = await api('POST', '/api/tasks/flush', { completedOlderThan: '24 hours' });
    flash(`flushed ${deleted} completed tasks older than 24 hours`, 'ok');
    refreshGrids();
  } catch (err) {
    flash(err.message);
  }
});
$('#flush-failed').addEventListener('click', async () => {
  try {
    const { deleted } = await api('POST', '/api/tasks/flush', { failed: true });
    flash(`flushed ${deleted} failed tasks`, 'ok');
    refreshGrids();
  } catch (err) {
    flash(err.message);
  }
});

// Task detail: a dialog that refreshes while open.
let openTaskId;
let taskTimer;
async function openTask(id) {
  openTaskId = id;
  const dialog = $('#task-dialog');
  $('#task-dialog-title').textContent = id;
  if (!dialog.open) dialog.showModal();
  clearInterval(taskTimer);
  await renderTask();
  taskTimer = setInterval(renderTask, 1500);
}
$('#task-dialog').addEventListener('close', () => {
  clearInterval(taskTimer);
  openTaskId = undefined;
  if (location.hash.startsWith('#/tasks/')) history.replaceState(null, '', '#/tasks');
});

async function renderTask() {
  if (!openTaskId) return;
  let t;
  try {
    t = await api('GET', `/api/tasks/${enc(openTaskId)}`);
  } catch (err) {
    $('#task-details').replaceChildren(el('dd', { class: 'error' }, err.message));
    return;
  }
  const dialog = $('#task-dialog');
  dialog.dataset.status = t.status;
  const rows = [
    ['Status', statusBadge(t.status)],
    ['Method', t.method],
    ['Data source', t.input.dataSourceKey],
    ['Record keys', t.input.registryObjectKeys?.join(', ')],
    ['Log message', t.input.logMessage],
    ['Recurs every', t.input.recurEvery && `${t.input.recurEvery} (run ${(t.iteration ?? 0) + 1})`],
    ['Added', time(t.addedAt)],
    ['Scheduled for', time(t.scheduledFor)],
    ['Waiting for', t.status === 'WAITING' ? t.waitingFor?.join(' and ') : undefined],
    ['Started', time(t.startedAt)],
    ['Completed', time(t.completedAt)],
    ['Duration', dur(t.durationMs)],
    ['Attempts', t.attempts],
    ['Prerequisite', t.prerequisiteTaskId && taskLink(t.prerequisiteTaskId)],
    ['Dependants', t.dependants?.length ? t.dependants.map((d) => [taskLink(d), ' ']) : undefined],
    ['Merged into', t.deduplicatedInto && taskLink(t.deduplicatedInto)],
    ['Output', t.output !== undefined ? el('pre', {}, JSON.stringify(t.output, null, 2)) : undefined],
    ['Error', t.error && el('span', { class: 'error' }, t.error)],
    ['Temporal', t.temporalUiUrl && el('a', { href: t.temporalUiUrl, target: '_blank', rel: 'noopener' }, 'open the workflow in the Temporal Web UI')],
  ];
  $('#task-details').replaceChildren(
    ...rows.filter(([, v]) => v !== undefined && v !== '' && v !== null).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]),
  );
  $('#task-log').textContent = (t.logs ?? []).map((l) => `${l.at.slice(11, 19)} ${l.level.padEnd(5)} ${l.message}`).join('\n') || '(nothing logged yet)';
  const p = $('#task-progress');
  p.hidden = t.status !== 'STARTED';
  if (t.progress) {
    const bar = $('progress', p);
    if (t.progress.total) {
      bar.max = t.progress.total;
      bar.value = t.progress.done;
    } else bar.removeAttribute('value');
    $('span', p).textContent = `${t.progress.done}${t.progress.total ? ` / ${t.progress.total}` : ''} ${t.progress.message ?? ''}`;
  }
  $('#task-cancel').hidden = !(t.status === 'WAITING' || t.status === 'STARTED');
  $('#task-reschedule').hidden = t.status !== 'WAITING';
  $('#task-retry').hidden = !(t.status === 'FAILED' || t.status === 'CANCELLED');
}
$('#task-cancel').addEventListener('click', async () => {
  await cancelTask(openTaskId);
  renderTask();
});
$('#task-retry').addEventListener('click', () => retryTask(openTaskId));
$('#task-reschedule').addEventListener('click', () => openReschedule(openTaskId));
document.addEventListener('click', (ev) => {
  const a = ev.target.closest?.('a.task-link');
  if (!a) return;
  ev.preventDefault();
  openTask(decodeURIComponent(a.getAttribute('href').slice('#/tasks/'.length)));
});

// Reschedule dialog.
let rescheduleId;
function openReschedule(id) {
  rescheduleId = id;
  $('#reschedule-error').hidden = true;
  $('#reschedule-dialog').showModal();
}
$('#reschedule-close').addEventListener('click', () => $('#reschedule-dialog').close());
$('#reschedule-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const answer = await api('POST', `/api/tasks/${enc(rescheduleId)}/reschedule`, { scheduledFor: new FormData(ev.target).get('scheduledFor') });
    $('#reschedule-dialog').close();
    // 202: sent, but no worker answered; it may still apply (the message says what to check).
    if (answer?.queued) flash(answer.message, 'warn');
    else flash(`rescheduled ${rescheduleId}`, 'ok');
    refreshGrids();
    renderTask();
  } catch (err) {
    $('#reschedule-error').textContent = err.message;
    $('#reschedule-error').hidden = false;
  }
});

// Add New Task dialog.
$('#add-task').addEventListener('click', () => {
  $('#add-error').hidden = true;
  $('#add-dialog').showModal();
});
$('#add-close').addEventListener('click', () => $('#add-dialog').close());
$('#add-form [name=delay]').addEventListener('change', (ev) => {
  $('#custom-delay').hidden = ev.target.value !== 'custom';
  $('#custom-date').hidden = ev.target.value !== 'date';
});
$('#add-form [name=recur]').addEventListener('change', (ev) => ($('#custom-recur').hidden = ev.target.value !== 'custom'));
$('#add-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const delay = f.get('delay');
  const scheduledFor = delay === 'custom' ? f.get('customDelay') : delay === 'date' ? (f.get('at') ? new Date(f.get('at')).toISOString() : '') : delay;
  const recur = f.get('recur') === 'custom' ? f.get('customRecur') : f.get('recur');
  const keys = String(f.get('registryObjectKeys') ?? '')
    .split(/\n/)
    .map((k) => k.trim())
    .filter(Boolean);
  const body = {
    method: f.get('method'),
    ...(f.get('dataSourceKey') ? { dataSourceKey: f.get('dataSourceKey') } : {}),
    ...(keys.length ? { registryObjectKeys: keys } : {}),
    ...(f.get('prerequisiteTaskId') ? { prerequisiteTaskId: String(f.get('prerequisiteTaskId')).trim() } : {}),
    ...(scheduledFor ? { scheduledFor } : {}),
    ...(recur ? { recurEvery: recur } : {}),
    ...(f.get('logMessage') ? { logMessage: f.get('logMessage') } : {}),
  };
  try {
    const { taskId, deduplicated } = await api('POST', '/api/tasks', body);
    ev.target.reset();
    for (const id of ['#custom-delay', '#custom-date', '#custom-recur']) $(id).hidden = true;
    $('#add-dialog').close();
    flash(deduplicated ? `a ${body.method} task for this data source was already waiting: merged into ${taskId}` : `added ${taskId}`, 'ok');
    refreshGrids();
  } catch (err) {
    $('#add-error').textContent = err.message;
    $('#add-error').hidden = false;
  }
});

// ---------- health ----------
const HEALTH_REFRESH_MS = 15000;
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf'];
const charts = {};

function showHealth() {
  showOnly('view-health');
  every(HEALTH_REFRESH_MS, async () => {
    let h;
    try {
      h = await api('GET', '/api/health/details');
    } catch (err) {
      flash(err.message);
      return;
    }
    $('#health-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    renderHealthNow(h);
    const hours = h.tasks.hours.map((t) => Date.parse(t) / 1000);
    drawChart('chart-completed', hours, h.tasks.completed, { bars: true, counts: true });
    drawChart('chart-failed', hours, h.tasks.failed, { bars: true, counts: true });
    drawChart(
      'chart-lag',
      h.lag.minutes.map((t) => Date.parse(t) / 1000),
      h.lag.lagSeconds,
      {},
    );
    drawChart('chart-durations', hours, h.tasks.durationP95, { points: true });
  });
}

function cardList(id, items) {
  $(`#${id} ul`).replaceChildren(...items.map(([text, kind]) => el('li', { class: kind ?? '' }, text)));
}

function renderHealthNow(h) {
  cardList(
    'health-workers',
    h.workers.map((w) => {
      const what = `${w.taskQueue} (${w.kind === 'workflow' ? 'workflows' : 'activities'})`;
      if (w.error) return [`${what}: cannot ask Temporal: ${w.error}`, 'bad'];
      return [`${what}: ${counted(w.identities.length, 'worker')}`, w.identities.length ? 'good' : 'bad'];
    }),
  );
  cardList(
    'health-backlog',
    h.backlog.length
      ? h.backlog.map((b) => [`${b.dataSourceKey}: ${counted(b.queued, 'change')} queued, the oldest ${dur(Math.round(b.oldestSeconds * 1000))} ago`])
      : [['none: every follow-up is done', 'good']],
  );
  cardList(
    'health-quarantine',
    h.quarantined.length ? h.quarantined.map((q) => [`${q.dataSourceKey || '(no data source)'}: ${counted(q.records, 'record')}`, 'bad']) : [['none', 'good']],
  );
  const a = h.alerts;
  if (!a.configured) cardList('health-alerts', [['Prometheus is not configured (set PROMETHEUS_URL to show its alerts here)']]);
  else if (a.error) cardList('health-alerts', [[`Prometheus at ${a.url} could not be read: ${a.error}`, 'bad']]);
  else
    cardList(
      'health-alerts',
      a.alerts.length
        ? a.alerts.map((x) => [
            `${x.name}: ${x.state}${x.severity ? ` (${x.severity})` : ''}${x.summary ? ` - ${x.summary}` : ''}`,
            x.state === 'firing' ? 'bad' : '',
          ])
        : [['none pending or firing', 'good']],
    );
}

/** One uPlot chart per figure, redrawn with new data; a series per key of `byName`. */
function drawChart(id, xs, byName, opts) {
  const fig = $(`#${id}`);
  // A method with nothing to show here (only cancelled runs, say) gets no line.
  const names = Object.keys(byName)
    .filter((n) => byName[n].some((v) => v))
    .sort();
  const key = names.join('\n');
  if (charts[id] && charts[id].key !== key) {
    charts[id].plot.destroy();
    delete charts[id];
  }
  fig.querySelector('.none')?.remove();
  if (!names.length) {
    fig.append(el('div', { class: 'none' }, 'nothing in the last 24 hours'));
    return;
  }
  const data = [xs, ...names.map((n) => byName[n])];
  if (charts[id]) return charts[id].plot.setData(data);
  const series = [
    {},
    ...names.map((n, i) => ({
      label: n,
      stroke: PALETTE[i % PALETTE.length],
      fill: opts.bars ? `${PALETTE[i % PALETTE.length]}55` : undefined,
      width: opts.bars ? 1 : 2,
      points: { show: !!opts.points },
      paths: opts.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
      spanGaps: false,
    })),
  ];
  const width = Math.max(fig.clientWidth - 16, 300);
  // Half a step of room at both ends, so the first and the current hour's bars show whole.
  const half = (xs[1] - xs[0]) / 2;
  const scales = {
    x: { time: true, range: () => [xs[0] - half, xs[xs.length - 1] + half] },
    ...(opts.counts ? { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } } : {}),
  };
  const yAxis = { size: 50, ...(opts.counts ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] } : {}) };
  const plot = new uPlot({ width, height: 220, series, scales, axes: [{}, yAxis], legend: { live: false } }, data, fig);
  charts[id] = { plot, key };
}

// ---------- data sources ----------
function showDataSources() {
  showOnly('view-data-sources');
  every(5000, async () => {
    try {
      dataSources = await api('GET', '/api/data-sources');
    } catch {
      return;
    }
    $('#data-sources tbody').replaceChildren(
      ...dataSources.map((d) =>
        el(
          'tr',
          { dataset: { key: d.key } },
          el(
            'td',
            {},
            el(
              'a',
              {
                href: '#/records',
                onclick: (ev) => {
                  ev.preventDefault();
                  $('#record-filters [name=dataSource]').value = d.key;
                  location.hash = '#/records';
                },
              },
              d.key,
            ),
          ),
          el('td', {}, d.title),
          el('td', { class: 'num' }, d.records),
          el(
            'td',
            {},
            Object.entries(d.byQuality)
              .map(([q, n]) => `${q === 'unchecked' ? 'unchecked' : `level ${q}`}: ${n}`)
              .join(', '),
          ),
          el('td', { class: d.backgroundWorkInProgress ? 'busy' : '' }, backgroundWorkText(d)),
        ),
      ),
    );
    await showQuarantine();
  });
}

/** "3 tasks", "1 follow-up": a count with its noun, singular or plural. */
const counted = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** What runs for a data source now and what is scheduled (and when), in words. */
function backgroundWorkText(d) {
  const now = [
    d.runningTasks ? `${counted(d.runningTasks, 'task')} running` : '',
    d.queuedTasks ? `${counted(d.queuedTasks, 'task')} waiting to start` : '',
    d.openOperations ? `${counted(d.openOperations, 'follow-up')} in progress` : '',
  ].filter(Boolean);
  const later = d.scheduledTasks ? `${counted(d.scheduledTasks, 'task')} scheduled, the next at ${new Date(d.nextScheduledFor).toLocaleString()}` : '';
  if (!now.length) return later || 'idle';
  return `in progress: ${now.join(', ')}${later ? `; ${later}` : ''}`;
}

async function showQuarantine() {
  let q;
  try {
    q = await api('GET', '/api/quarantine');
  } catch {
    return;
  }
  $('#quarantine-summary').textContent = q.total
    ? `${q.total} record${q.total === 1 ? '' : 's'} in quarantine: PostgreSQL refused their derived state; the rest of their batches went on. Fix the record, then retry.`
    : 'No record is in quarantine.';
  $('#quarantine-retry').hidden = !isAdmin() || q.total === 0;
  $('#quarantine tbody').replaceChildren(
    ...q.records.map((r) =>
      el(
        'tr',
        { dataset: { key: r.recordKey } },
        el('td', {}, el('a', { href: `#/records/${enc(r.recordKey)}` }, r.recordKey)),
        el('td', {}, r.dataSourceKey ?? ''),
        el('td', {}, r.error),
        el('td', { class: 'num' }, r.attempts),
        el('td', {}, new Date(r.lastTriedAt).toLocaleString()),
      ),
    ),
  );
}

$('#quarantine-retry').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/api/quarantine/retry', {});
    flash(`retried ${r.tried}: ${r.released} released, ${r.stillQuarantined} still refused`, r.stillQuarantined ? 'error' : 'ok');
    await showQuarantine();
  } catch (err) {
    flash(err.message, 'error');
  }
});

// ---------- records ----------
let recordOffset = 0;
const RECORD_PAGE = 25;
function showRecords() {
  showOnly('view-records');
  loadRecords();
}
async function loadRecords() {
  const f = new FormData($('#record-filters'));
  try {
    const res = await api(
      'GET',
      `/api/records?${qs({ q: f.get('q'), dataSource: f.get('dataSource'), class: f.get('class'), quality: f.get('quality'), limit: RECORD_PAGE, offset: recordOffset })}`,
    );
    const total = res.totalIsAtLeast ? `more than ${res.total.toLocaleString('en')}` : res.total.toLocaleString('en');
    const showing = res.records.length ? `; showing ${recordOffset + 1}–${recordOffset + res.records.length}` : '';
    $('#record-count').textContent = `${total} records${showing}${res.totalIsAtLeast ? ' (in key order)' : ''}`;
    $('#records tbody').replaceChildren(
      ...res.records.map((r) =>
        el(
          'tr',
          { dataset: { key: r.key } },
          el('td', {}, el('a', { href: `#/records/${enc(r.key)}` }, r.key)),
          el('td', {}, r.title ?? ''),
          el('td', {}, r.class),
          el('td', {}, r.status),
          el('td', {}, r.dataSourceKey),
          el('td', { class: 'num' }, r.qualityLevel ?? ''),
        ),
      ),
    );
    $('#records-prev').disabled = recordOffset === 0;
    $('#records-next').disabled = res.records.length < RECORD_PAGE || (!res.totalIsAtLeast && recordOffset + RECORD_PAGE >= res.total);
  } catch (err) {
    flash(err.message);
  }
}
$('#record-filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  recordOffset = 0;
  loadRecords();
});
$('#records-prev').addEventListener('click', () => {
  recordOffset = Math.max(0, recordOffset - RECORD_PAGE);
  loadRecords();
});
$('#records-next').addEventListener('click', () => {
  recordOffset += RECORD_PAGE;
  loadRecords();
});

let shownRecord;
async function showRecord(key) {
  showOnly('view-record');
  shownRecord = key;
  $('#deletion').hidden = true;
  $('#delete-record').disabled = false;
  let r;
  try {
    r = await api('GET', `/api/records/${enc(key)}`);
  } catch (err) {
    $('#record-title').textContent = key;
    $('#record-fields').replaceChildren(el('dd', { class: 'error' }, err.message));
    $('#record-quality').replaceChildren();
    $('#record-relations tbody').replaceChildren();
    $('#delete-record').disabled = true;
    return;
  }
  $('#record-title').textContent = r.title ?? r.key;
  const fields = [
    ['Key', r.key],
    ['Class', r.class],
    ['Type', r.type],
    ['Status', r.status],
    ['Data source', r.dataSourceKey],
    ['Group', r.group],
    ['Quality level', r.qualityLevel ?? 'not checked yet'],
    ['Quality checked', time(r.qualityUpdatedAt)],
    ['Indexed', time(r.indexedAt)],
    ['Cached', time(r.cachedAt)],
    ['Description', r.description],
  ];
  $('#record-fields').replaceChildren(
    ...fields.filter(([, v]) => v !== null && v !== undefined && v !== '').flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { field: k } }, v)]),
  );
  $('#record-quality').replaceChildren(
    ...(r.qualityReport?.checks ?? []).map((c) =>
      el('li', { class: c.passed ? 'passed' : c.severity }, `${c.passed ? '✓' : c.severity === 'error' ? '✗' : '!'} level ${c.level}: ${c.message}`),
    ),
  );
  $('#record-relations tbody').replaceChildren(
    ...r.relations.map((x) =>
      el(
        'tr',
        {},
        el('td', {}, x.direction),
        el('td', {}, x.type),
        el('td', {}, el('a', { href: `#/records/${enc(x.key)}` }, x.key)),
        el('td', {}, x.class),
        el('td', {}, x.title ?? ''),
      ),
    ),
    ...r.dangling.map((x) =>
      el(
        'tr',
        { class: 'dangling' },
        el('td', {}, 'outbound'),
        el('td', {}, x.type),
        el('td', {}, x.key),
        el('td', {}, ''),
        el('td', {}, '(not in the registry)'),
      ),
    ),
  );
}

$('#delete-record').addEventListener('click', async () => {
  const key = shownRecord;
  if (!confirm(`Delete ${key}? Its related records will be rechecked, reindexed and re-cached in the background.`)) return;
  $('#delete-record').disabled = true;
  const started = performance.now();
  let outcome;
  try {
    outcome = await api('DELETE', `/api/records/${enc(key)}`);
  } catch (err) {
    flash(err.message);
    $('#delete-record').disabled = false;
    return;
  }
  const answeredMs = Math.round(performance.now() - started);
  $('#deletion').hidden = false;
  const related = outcome.plannedByRound ? 'its related records' : `${outcome.affected} related records`;
  $('#deletion-text').textContent = `Deleted in ${answeredMs} ms. Updating ${related} in the background…`;
  every(700, async () => {
    const p = await api('GET', `/api/records/${enc(key)}/deletion?runId=${enc(outcome.runId)}`).catch(() => undefined);
    if (!p) return;
    const bar = $('#deletion-progress');
    bar.max = Math.max(1, p.batchesTotal);
    bar.value = p.phase === 'done' ? bar.max : p.batchesDone;
    if (p.phase === 'done') {
      $('#deletion-text').textContent = `Deleted in ${answeredMs} ms. All ${p.affected} related records are rechecked, reindexed and re-cached.`;
      $('#deletion').dataset.done = 'true';
      stopTimers();
    }
  });
});

// ---------- start ----------
(async () => {
  try {
    await afterSignIn();
  } catch (err) {
    if (err.status !== 401) flash(err.message);
    showLogin();
  }
})();
