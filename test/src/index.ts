export * from "./certs.js";
export * from "./fixture.js";
export * from "./mixed-queue.js";
export * from "./qmail-send/index.js";
export * from "./queue-builder.js";
export * from "./source-script.js";
