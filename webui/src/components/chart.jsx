// SPDX-License-Identifier: LGPL-2.1-or-later
// A live line chart (uPlot): one series per node, values in percent over
// the last minutes. The data lives in a MetricHistory the dashboard feeds
// from the event stream; the chart only draws it. Its figures are also
// in the nodes table beside it, for screen readers. Must not: fetch.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatClock, formatPercent, language } from "../i18n.js";

export const PALETTE = ["#1f77b4", "#d95f02", "#2ca02c", "#9467bd", "#e7298a", "#8c564b", "#17becf", "#7f7f7f"];
const WINDOW_SEC = 300;
const MIN_SPAN_SEC = 60;

// Samples per node: node id → [{time (s), cpu, mem, disk}], the last
// WINDOW_SEC seconds.
export class MetricHistory {
        constructor() {
                this.byNode = new Map();
                this.names = new Map();
        }

        // m: a dashboard node ({node_id, name, cpu_percent, mem_*, disk_*})
        // or a node/metrics status value with node_id and name added.
        add(nodeId, name, m, time = Date.now() / 1000) {
                if (name)
                        this.names.set(nodeId, name);
                let list = this.byNode.get(nodeId);
                if (!list) {
                        list = [];
                        this.byNode.set(nodeId, list);
                }
                const pct = (used, total) => (used === null || used === undefined || !total ? null : (100 * used) / total);
                const sample = {
                        time,
                        cpu: m.cpu_percent ?? null,
                        mem: pct(m.mem_used_mib, m.mem_total_mib),
                        disk: pct(m.disk_used_mib, m.disk_total_mib),
                };
                // One sample per node every 2 s: a dashboard reload right
                // after an event carries the same sample again.
                const last = list[list.length - 1];
                if (last && time - last.time < 1)
                        list[list.length - 1] = { ...sample, time: last.time };
                else
                        list.push(sample);
                while (list.length && list[0].time < time - WINDOW_SEC)
                        list.shift();
        }

        // uPlot's data for one figure: [times, series per node...] on one
        // time axis (every node's sample times, gaps as null).
        data(figure) {
                const ids = [...this.byNode.keys()].sort((a, b) => a - b);
                const times = [...new Set(ids.flatMap((id) => this.byNode.get(id).map((s) => s.time)))].sort((a, b) => a - b);
                const index = new Map(times.map((x, i) => [x, i]));
                const series = ids.map((id) => {
                        const row = new Array(times.length).fill(null);
                        for (const s of this.byNode.get(id))
                                row[index.get(s.time)] = s[figure];
                        return row;
                });
                return { ids, data: [times, ...series] };
        }
}

// A chart of one figure ("cpu", "mem", "disk") for every node. version
// changes whenever history has new samples.
export function MetricChart({ history, figure, title, version }) {
        const box = useRef(null);
        const plot = useRef(null);
        const shape = useRef("");

        useEffect(() => {
                const { ids, data } = history.data(figure);
                const key = `${ids.join(",")}|${language()}`;
                const width = Math.max(240, box.current.clientWidth || 300);
                if (!plot.current || shape.current !== key) {
                        if (plot.current)
                                plot.current.destroy();
                        shape.current = key;
                        plot.current = new uPlot({
                                width,
                                height: 160,
                                scales: {
                                        // The samples' span, at least the last minute. From the
                                        // data itself: for a single sample uPlot proposes a
                                        // span of 86400 / 1e-3 s (years).
                                        x: {
                                                time: true,
                                                range: (u) => {
                                                        const xs = u.data[0] || [];
                                                        const last = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
                                                        const first = xs.length ? xs[0] : last;
                                                        return [Math.min(first, last - MIN_SPAN_SEC), last];
                                                },
                                        },
                                        y: { range: [0, 100] },
                                },
                                axes: [
                                        // One line of clock times in the UI's language.
                                        { space: 90, values: (u, ticks) => ticks.map((v) => formatClock(v)) },
                                        { values: (u, ticks) => ticks.map((v) => formatPercent(v)), size: 50 },
                                ],
                                series: [
                                        {},
                                        ...ids.map((id, i) => ({
                                                label: history.names.get(id) || String(id),
                                                stroke: PALETTE[i % PALETTE.length],
                                                width: 2,
                                                // Nodes sample at different moments: join their points.
                                                spanGaps: true,
                                                value: (u, v) => formatPercent(v, 1),
                                        })),
                                ],
                                legend: { live: false },
                                cursor: { drag: { x: false, y: false } },
                        }, data, box.current);
                } else {
                        plot.current.setData(data);
                }
        }, [version, figure, language()]);

        useEffect(() => {
                if (typeof ResizeObserver !== "function")
                        return undefined;
                const ro = new ResizeObserver(() => {
                        if (plot.current && box.current)
                                plot.current.setSize({ width: Math.max(240, box.current.clientWidth), height: 160 });
                });
                ro.observe(box.current);
                return () => {
                        ro.disconnect();
                        if (plot.current)
                                plot.current.destroy();
                        plot.current = null;
                };
        }, []);

        return (
                <figure class="chart">
                        <figcaption>{title}</figcaption>
                        <div ref={box} class="chart-box" role="img" aria-label={title} />
                </figure>
        );
}
