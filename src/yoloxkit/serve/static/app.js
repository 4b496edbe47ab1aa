// yoloxkit web page: upload once at a low confidence, then filter in the browser.
// The slice options go with the upload (the server slices); changing them runs the image again.
"use strict";

(function () {
  const LOW_CONF = 0.05; // the one request asks for everything above this; the slider filters locally

  const el = (id) => document.getElementById(id);
  const fileInput = el("file-input");
  const dropZone = el("drop-zone");
  const statusLine = el("status");
  const slider = el("conf-slider");
  const sliderValue = el("conf-value");
  const classFilter = el("class-filter");
  const canvas = el("canvas");
  const tableBody = document.querySelector("#detections tbody");
  const countLabel = el("count");
  const latency = el("latency");
  const modelInfo = el("model-info");
  const sliceInput = el("slice-input");
  const sliceFull = el("slice-full");

  const state = { model: null, result: null, bitmap: null, hidden: new Set(), roundTripMs: 0, file: null };

  // 20 well-separated colours, dark enough for white label text; classes cycle through them.
  const PALETTE = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#f032e6", "#9a6324",
    "#800000", "#808000", "#000075", "#d62728", "#2ca02c", "#1f77b4", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e",
  ];

  function classColor(classId) {
    return PALETTE[classId % PALETTE.length];
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function errorText(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
    return `HTTP ${status}`;
  }

  async function loadModel() {
    try {
      const response = await fetch("/v1/model");
      const info = await response.json();
      if (!response.ok) throw new Error(errorText(info, response.status));
      state.model = info;
      const [h, w] = info.input_size;
      let text = `Model ${info.name} · ${info.backend} · input ${w}×${h} · ${info.num_classes} classes`;
      if (info.slicing) {
        const s = info.slicing;
        sliceInput.value = s.height === s.width ? String(s.height) : `${s.height}x${s.width}`;
        sliceFull.checked = Boolean(s.full);
        const shape = s.height === s.width ? `${s.height}×${s.width}` : `${s.height}×${s.width} (h×w)`;
        text += ` · slices ${shape}${s.full ? " + whole image" : ""} by default`;
      }
      sliceFull.disabled = !sliceInput.value.trim();
      modelInfo.textContent = text;
      slider.min = String(Math.min(LOW_CONF, info.conf));
      slider.value = String(info.conf);
      sliderValue.textContent = Number(info.conf).toFixed(2);
    } catch (err) {
      modelInfo.textContent = `Model information unavailable: ${err.message}`;
    }
  }

  function visibleDetections() {
    if (!state.result) return [];
    const threshold = Number(slider.value);
    return state.result.detections.filter((d) => d.score >= threshold && !state.hidden.has(d.name));
  }

  function drawImageWithBoxes(detections) {
    const ctx = canvas.getContext("2d");
    const { width, height } = state.result;
    canvas.width = width;
    canvas.height = height;
    ctx.drawImage(state.bitmap, 0, 0, width, height);
    const lineWidth = Math.max(2, Math.round(Math.max(width, height) / 300));
    const fontSize = Math.max(12, Math.round(Math.max(width, height) / 55));
    ctx.font = `600 ${fontSize}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    // Lowest score first, so the labels of the most confident boxes end up on top.
    for (const d of [...detections].reverse()) {
      const [x1, y1, x2, y2] = d.box;
      const color = classColor(d.class_id);
      ctx.strokeStyle = color;
      ctx.lineWidth = lineWidth;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const label = `${d.name} ${d.score.toFixed(2)}`;
      const textWidth = ctx.measureText(label).width + 8;
      const labelHeight = fontSize + 6;
      const labelY = y1 - labelHeight >= 0 ? y1 - labelHeight : y1;
      ctx.fillStyle = color;
      ctx.fillRect(x1, labelY, textWidth, labelHeight);
      ctx.fillStyle = "#ffffff";
      ctx.fillText(label, x1 + 4, labelY + 3);
    }
  }

  function fillTable(detections) {
    tableBody.replaceChildren();
    detections.forEach((d, i) => {
      const row = document.createElement("tr");
      const cells = [String(i + 1), d.name, d.score.toFixed(3), ...d.box.map((v) => v.toFixed(1))];
      cells.forEach((text, column) => {
        const cell = document.createElement("td");
        if (column === 1) {
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = classColor(d.class_id);
          cell.append(swatch);
        }
        cell.append(document.createTextNode(text));
        row.append(cell);
      });
      tableBody.append(row);
    });
    const total = state.result ? state.result.detections.length : 0;
    countLabel.textContent = `(${detections.length} shown of ${total})`;
  }

  function showLatency() {
    const r = state.result;
    if (!r) return;
    const t = r.timing;
    latency.textContent =
      `${r.model}: server ${t.total_ms.toFixed(1)} ms (inference ${t.inference_ms.toFixed(1)} ms, ` +
      `queue ${t.queue_ms.toFixed(1)} ms, batch of ${t.batch_size}) · round trip ${state.roundTripMs.toFixed(0)} ms`;
  }

  function render() {
    sliderValue.textContent = Number(slider.value).toFixed(2);
    if (!state.result || !state.bitmap) return;
    const detections = visibleDetections();
    drawImageWithBoxes(detections);
    fillTable(detections);
  }

  function buildClassFilter() {
    classFilter.querySelectorAll("label, .hint").forEach((node) => node.remove());
    const counts = new Map();
    for (const d of state.result.detections) {
      const entry = counts.get(d.name) || { count: 0, classId: d.class_id };
      entry.count += 1;
      counts.set(d.name, entry);
    }
    state.hidden.clear();
    if (counts.size === 0) {
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = "No detections above the lowest confidence.";
      classFilter.append(hint);
      return;
    }
    const sorted = [...counts.entries()].sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]));
    for (const [name, { count, classId }] of sorted) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = true;
      box.value = name;
      box.dataset.className = name;
      box.addEventListener("change", () => {
        if (box.checked) state.hidden.delete(name);
        else state.hidden.add(name);
        render();
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = classColor(classId);
      label.append(box, swatch, document.createTextNode(` ${name} (${count})`));
      classFilter.append(label);
    }
  }

  // The query of an upload: the low confidence, and the slice options (empty: the whole image,
  // which a server sliced by default is told with slice=off).
  function detectQuery() {
    const params = new URLSearchParams({ conf: String(LOW_CONF) });
    const slice = sliceInput.value.trim();
    if (slice) {
      params.set("slice", slice);
      params.set("slice_full", sliceFull.checked ? "true" : "false");
    } else if (state.model && state.model.slicing) {
      params.set("slice", "off");
    }
    return params;
  }

  function sliceLabel(params) {
    const slice = params.get("slice");
    if (!slice || slice === "off") return "";
    return `, sliced ${slice}${params.get("slice_full") === "true" ? " + whole image" : ""}`;
  }

  async function detect(file) {
    if (!file) return;
    state.file = file;
    setStatus(`Detecting objects in ${file.name}…`);
    const form = new FormData();
    form.append("file", file, file.name);
    const query = detectQuery();
    const started = performance.now();
    let response;
    let body;
    try {
      response = await fetch(`/v1/detect?${query}`, { method: "POST", body: form });
      body = await response.json();
    } catch (err) {
      setStatus(`Request failed: ${err.message}`, true);
      return;
    }
    state.roundTripMs = performance.now() - started;
    if (!response.ok) {
      setStatus(`${file.name}: ${errorText(body, response.status)}`, true);
      return;
    }
    try {
      state.bitmap = await createImageBitmap(file);
    } catch (err) {
      setStatus(`${file.name}: the browser cannot display this image (${err.message})`, true);
      return;
    }
    state.result = body;
    buildClassFilter();
    render();
    showLatency();
    setStatus(
      `${file.name}: ${body.width}×${body.height}, ${body.detections.length} detections ≥ ${LOW_CONF}` +
        sliceLabel(query)
    );
  }

  fileInput.addEventListener("change", () => detect(fileInput.files[0]));
  dropZone.addEventListener("click", (event) => {
    if (event.target === dropZone) fileInput.click();
  });
  dropZone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") fileInput.click();
  });
  ["dragenter", "dragover"].forEach((type) =>
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    })
  );
  ["dragleave", "drop"].forEach((type) =>
    dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"))
  );
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) detect(file);
  });
  slider.addEventListener("input", render);
  sliceInput.addEventListener("input", () => {
    sliceFull.disabled = !sliceInput.value.trim();
  });
  [sliceInput, sliceFull].forEach((control) =>
    control.addEventListener("change", () => {
      if (state.file) detect(state.file);
    })
  );

  loadModel();
})();
