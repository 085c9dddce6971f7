// A command line as an operator types it in a POSIX shell: both commands print "the exact
// command to execute" after a preview, and it must paste back as the same arguments.

const PLAIN = /^[\w@%+=:,./-]+$/;

/** One argument, quoted for sh when it needs to be: 'it'\''s' for it's. */
export function shellWord(arg: string): string {
  if (arg !== "" && PLAIN.test(arg)) return arg;
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/** Arguments joined into one line for sh. */
export function shellCommand(args: readonly string[]): string {
  return args.map(shellWord).join(" ");
}
