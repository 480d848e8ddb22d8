// tart's three ways of failing (contracts/tart.md §1): a RuntimeError prints its
// bare message (exit 2 for a missing/not-running/already-running VM, else 1),
// any other error prints `Error: <message>` (exit 1), and a ValidationError
// prints `Error: <message>` plus the command's usage (exit 64).

export class RuntimeError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(message);
  }
}

export class TartError extends Error {}

export class ValidationError extends Error {}

export const vmDoesNotExist = (name: string) => new RuntimeError(`the specified VM "${name}" does not exist`, 2);
export const vmNotRunning = (name: string) => new RuntimeError(`VM "${name}" is not running`, 2);
export const vmAlreadyRunning = (name: string) => new RuntimeError(`VM "${name}" is already running!`, 2);
export const vmIsRunning = (name: string) => new RuntimeError(`VM "${name}" is running`, 1);
