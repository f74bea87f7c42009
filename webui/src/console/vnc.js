// SPDX-License-Identifier: LGPL-2.1-or-later
// The VNC console, a bundle of its own (noVNC is large and only the
// console page needs it): the application imports this module lazily.
// Opens the WebSocket itself (so the close code is known: 1001 means the
// VM's VNC server went away, e.g. after a live migration, and the page
// reconnects) and hands it to noVNC. Must not: know about pages or text.

import RFB from "@novnc/novnc";

// Connects target (an element) to the console WebSocket at url.
// handlers: connect(), disconnect({clean, code, reason}), name(text).
// Returns {disconnect, ctrlAltDel, setScale(bool), focus}.
export function connect(target, url, handlers) {
        const ws = new WebSocket(url, ["binary"]);
        let closeEvent = null;
        ws.addEventListener("close", (e) => {
                closeEvent = e;
        });
        const rfb = new RFB(target, ws, { shared: true });
        rfb.scaleViewport = true;
        rfb.resizeSession = false;
        rfb.focusOnClick = true;
        rfb.addEventListener("connect", () => handlers.connect());
        rfb.addEventListener("disconnect", (e) => handlers.disconnect({
                clean: !!(e.detail && e.detail.clean),
                code: closeEvent ? closeEvent.code : null,
                reason: closeEvent ? closeEvent.reason : "",
        }));
        rfb.addEventListener("desktopname", (e) => handlers.name(e.detail && e.detail.name));
        return {
                disconnect: () => rfb.disconnect(),
                ctrlAltDel: () => rfb.sendCtrlAltDel(),
                setScale: (on) => {
                        rfb.scaleViewport = on;
                },
                focus: () => rfb.focus(),
        };
}
