// SPDX-License-Identifier: LGPL-2.1-or-later
// Hash routing: "#/vms/3" → {name: "vm", params: {id: "3"}}. The routes
// are a table; pages register nothing themselves. Must not: load data.

import { useEffect, useState } from "preact/hooks";

// Patterns: segments, ":name" a parameter. The first match wins.
export const ROUTES = [
        ["dashboard", "/"],
        ["nodes", "/nodes"],
        ["vms", "/vms"],
        ["vm", "/vms/:id"],
        ["console", "/vms/:id/console"],
        ["storage", "/storage"],
        ["networks", "/networks"],
        ["fencing", "/fencing"],
        ["infrastructure", "/infrastructure"],
        ["jobs", "/jobs"],
        ["job", "/jobs/:id"],
        ["audit", "/audit"],
        ["alerts", "/alerts"],
        ["changes", "/changes"],
        ["setup", "/setup"],
];

export function parseHash(hash) {
        const path = (hash || "").replace(/^#/, "").split("?")[0] || "/";
        const parts = path.split("/").filter(Boolean);
        for (const [name, pattern] of ROUTES) {
                const want = pattern.split("/").filter(Boolean);
                if (want.length !== parts.length)
                        continue;
                const params = {};
                let ok = true;
                for (let i = 0; i < want.length && ok; i++) {
                        if (want[i].startsWith(":"))
                                params[want[i].slice(1)] = decodeURIComponent(parts[i]);
                        else
                                ok = want[i] === parts[i];
                }
                if (ok)
                        return { name, params, path };
        }
        return { name: "not-found", params: {}, path };
}

// The href of a route: href("vm", {id: 3}) → "#/vms/3".
export function href(name, params = {}) {
        const route = ROUTES.find((r) => r[0] === name);
        if (!route)
                throw new Error(`no route ${name}`);
        const path = route[1].split("/").map((s) =>
                (s.startsWith(":") ? encodeURIComponent(String(params[s.slice(1)])) : s)).join("/");
        return `#${path || "/"}`;
}

export function navigate(name, params) {
        window.location.hash = href(name, params);
}

export function useRoute() {
        const [route, setRoute] = useState(() => parseHash(window.location.hash));
        useEffect(() => {
                const onChange = () => setRoute(parseHash(window.location.hash));
                window.addEventListener("hashchange", onChange);
                return () => window.removeEventListener("hashchange", onChange);
        }, []);
        return route;
}
