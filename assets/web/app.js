// The page of `pix2pix-zero serve`: plain JavaScript, no build step. It posts the form to /api/edits, follows the
// job's server-sent events, and shows the input, the reconstruction and the edit side by side.
const $ = (id) => document.getElementById(id);
let chosen = null; // the File picked or dropped; null: the example
let current = null; // the running job's id
let events = null;

async function exampleBlob() {
  const res = await fetch('example.png');
  return res.blob();
}

function setImage(file) {
  chosen = file;
  $('preview').src = URL.createObjectURL(file);
}

function phaseRow(phase) {
  let row = document.querySelector(`li[data-phase="${phase}"]`);
  if (row === null) {
    row = document.createElement('li');
    row.dataset.phase = phase;
    const name = document.createElement('span');
    name.textContent = phase;
    const bar = document.createElement('progress');
    bar.setAttribute('aria-label', `${phase} progress`);
    const count = document.createElement('span');
    row.append(name, bar, count);
    $('phases').append(row);
  }
  return row;
}

function showProgress(p) {
  if (p === null) return;
  const row = phaseRow(p.phase);
  const [, bar, count] = row.children;
  bar.max = p.total;
  bar.value = p.step;
  count.textContent = `${p.step} / ${p.total}`;
}

function showStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function finished(status) {
  $('submit').disabled = false;
  $('cancel').disabled = true;
  current = null;
  if (events !== null) events.close();
  events = null;
  if (status.status === 'done') {
    // Every phase ended (the events are sampled, so the last step of a phase may not have been seen).
    for (const bar of document.querySelectorAll('#phases progress')) {
      bar.value = bar.max;
      bar.nextElementSibling.textContent = `${bar.max} / ${bar.max}`;
    }
    showStatus(`Done (caption: "${status.caption}").`);
    $('caption-used').textContent = `Caption: "${status.caption}"`;
    const base = `api/edits/${status.id}`;
    $('edited-image').src = `${base}/image`;
    $('edited-link').href = `${base}/image`;
    $('reconstruction-image').src = `${base}/reconstruction`;
    $('reconstruction-link').href = `${base}/reconstruction`;
    $('input-image').src = $('preview').src;
    $('results').hidden = false;
  } else {
    showStatus(`${status.status}: ${status.error ?? ''}`, status.status === 'failed');
  }
}

function follow(id) {
  events = new EventSource(`api/edits/${id}/events`);
  events.onmessage = (e) => {
    const status = JSON.parse(e.data);
    if (status.id === undefined) return;
    showProgress(status.progress);
    if (status.status === 'queued') showStatus('Queued…');
    else if (status.status === 'running') showStatus(`Running: ${status.progress?.phase ?? 'starting'}…`);
    else finished(status);
  };
  events.onerror = () => {
    if (current !== null) showStatus('Lost the connection to the server; reload to try again.', true);
    if (events !== null) events.close();
  };
}

async function submit(event) {
  event.preventDefault();
  const form = new FormData();
  form.append('image', chosen ?? (await exampleBlob()), chosen?.name ?? 'example.png');
  for (const input of $('edit-form').querySelectorAll('input[name]:not([type=file])')) {
    if (input.type === 'checkbox') form.append(input.name, input.checked ? 'true' : 'false');
    else if (input.value.trim() !== '') form.append(input.name, input.value.trim());
  }
  $('phases').replaceChildren();
  $('results').hidden = true;
  showStatus('Submitting…');
  $('submit').disabled = true;
  const res = await fetch('api/edits', { method: 'POST', body: form });
  const body = await res.json();
  if (res.status !== 202) {
    $('submit').disabled = false;
    const wait = res.headers.get('retry-after');
    showStatus(`${res.status}: ${body.error}${wait !== null ? ` (retry in ${wait} s)` : ''}`, true);
    return;
  }
  current = body.id;
  $('cancel').disabled = false;
  follow(body.id);
}

async function cancel() {
  if (current !== null) await fetch(`api/edits/${current}`, { method: 'DELETE' });
}

async function start() {
  const info = await (await fetch('api/info')).json();
  $('concepts').replaceChildren(...info.concepts.map((c) => Object.assign(document.createElement('option'), { value: c })));
  if (info.model !== undefined) $('model').textContent = `Model: ${info.model}.`;
  if (info.captioner === false) {
    $('caption').required = true;
    $('caption').placeholder = 'required: this model has no captioner';
    $('caption').value = 'a cat';
  }
  $('image').addEventListener('change', () => {
    if ($('image').files.length > 0) setImage($('image').files[0]);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length > 0) setImage(e.dataTransfer.files[0]);
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') $('image').click();
  });
  $('edit-form').addEventListener('submit', submit);
  $('cancel').addEventListener('click', cancel);
  document.body.dataset.ready = 'true';
}

start().catch((err) => showStatus(`The page could not start: ${err.message}`, true));
