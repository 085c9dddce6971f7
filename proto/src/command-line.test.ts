import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { shellCommand, shellWord } from "./command-line.js";

describe("shellCommand", () => {
  it("leaves plain words alone and quotes the rest", () => {
    assert.equal(shellWord("-habcde.net"), "-habcde.net");
    assert.equal(shellWord("-Sfailure notice"), "'-Sfailure notice'");
    assert.equal(shellWord(""), "''");
  });

  it("pastes back into sh as the very same arguments, quotes, dollars and Japanese included", () => {
    const args = ["-S配信失敗のお知らせ", "it's $HOME `x`", "a\\b", "--reason", "storm; rm -rf /", ""];
    // printf prints each argument sh gives it on its own line, between brackets.
    const out = execFileSync("sh", ["-c", `printf '[%s]\\n' ${shellCommand(args)}`], { encoding: "utf8" });
    assert.equal(out, args.map((a) => `[${a}]\n`).join(""));
  });
});
