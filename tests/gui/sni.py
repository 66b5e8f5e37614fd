"""A StatusNotifierWatcher (the freedesktop/KDE tray protocol) on the test's D-Bus session, and a
client of what registers with it: the tray icon's `org.kde.StatusNotifierItem` properties and its
menu over `com.canonical.dbusmenu`, read and clicked as a panel would.

The app's tray (libayatana-appindicator, under Tauri's tray-icon) registers its item once a
watcher owns `org.kde.StatusNotifierWatcher`. Everything runs on an asyncio loop in a thread;
the methods here block until D-Bus answers.
"""
import asyncio
import threading
import time

from dbus_next import Message, MessageType, Variant
from dbus_next.aio import MessageBus

WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
MENU = "com.canonical.dbusmenu"
PROPS = "org.freedesktop.DBus.Properties"


class Watcher:
    def __init__(self):
        self.items = []  # (bus name, object path), as registered
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._bus = self._run(self._connect())

    def _run(self, coroutine, timeout=10):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _connect(self):
        bus = await MessageBus().connect()
        bus.add_message_handler(self._handle)
        await bus.request_name(WATCHER)
        return bus

    def _handle(self, msg):
        if msg.message_type != MessageType.METHOD_CALL or msg.path != "/StatusNotifierWatcher":
            return None
        if msg.interface == WATCHER and msg.member == "RegisterStatusNotifierItem":
            service = msg.body[0]
            # An item names its object path (appindicator) or its bus name (others).
            item = (msg.sender, service) if service.startswith("/") else (service, "/StatusNotifierItem")
            self.items.append(item)
            return Message.new_method_return(msg)
        if msg.interface == WATCHER and msg.member == "RegisterStatusNotifierHost":
            return Message.new_method_return(msg)
        properties = {
            "RegisteredStatusNotifierItems": Variant("as", [f"{n}{p}" for n, p in self.items]),
            "IsStatusNotifierHostRegistered": Variant("b", True),
            "ProtocolVersion": Variant("i", 0),
        }
        if msg.interface == PROPS and msg.member == "GetAll":
            return Message.new_method_return(msg, "a{sv}", [properties])
        if msg.interface == PROPS and msg.member == "Get" and msg.body[1] in properties:
            return Message.new_method_return(msg, "v", [properties[msg.body[1]]])
        return None

    def wait_for_item(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not self.items:
            if time.monotonic() > deadline:
                raise AssertionError("no StatusNotifierItem registered with the watcher")
            time.sleep(0.1)
        return self.items[-1]

    def _call(self, destination, path, interface, member, signature="", body=()):
        async def call():
            reply = await self._bus.call(Message(destination=destination, path=path, interface=interface,
                                                 member=member, signature=signature, body=list(body)))
            if reply.message_type == MessageType.ERROR:
                raise AssertionError(f"{member}: {reply.error_name} {reply.body}")
            return reply.body
        return self._run(call())

    def item_properties(self):
        name, path = self.wait_for_item()
        (props,) = self._call(name, path, PROPS, "GetAll", "s", [ITEM])
        return {k: v.value for k, v in props.items()}

    def menu(self):
        """The menu's top-level entries: [{id, label, toggle-state, enabled, children}]."""
        name, _ = self.wait_for_item()
        path = self.item_properties()["Menu"]
        _, layout = self._call(name, path, MENU, "GetLayout", "iias", [0, -1, []])

        def entry(node):
            ident, props, children = node
            values = {k: v.value for k, v in props.items()}
            return {"id": ident, "label": values.get("label", "").replace("_", ""),
                    "toggle-state": values.get("toggle-state"), "enabled": values.get("enabled", True),
                    "type": values.get("type", "standard"),
                    "children": [entry(c.value) for c in children]}
        return [entry(c.value) for c in layout[2]]

    def click(self, item_id):
        name, _ = self.wait_for_item()
        path = self.item_properties()["Menu"]
        self._call(name, path, MENU, "Event", "isvu", [item_id, "clicked", Variant("i", 0), 0])

    def close(self):
        self._run(self._disconnect())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _disconnect(self):
        self._bus.disconnect()
