// What tart prints when a VM's run or a guest command ends badly, in one place
// for both models of tart: the compiled fake (commands/, vm/) and MemoryTart.
// [U] marks a text not taken from tart or Virtualization.framework itself.

/** The 2-VM limit met by `tart run`: the names are the VMs running, which may be fewer than two. */
export const vmLimitReached = (others: readonly string[]) => `The number of VMs exceeds the system limit (other running VMs: ${others.join(", ")})`;
export const START_FAILURE = `Error Domain=VZErrorDomain Code=1 "The virtual machine failed to start." UserInfo={NSLocalizedFailure=The virtual machine failed to start.}`;
export const CRASH = `Error Domain=VZErrorDomain Code=1 "The virtual machine stopped unexpectedly." UserInfo={NSLocalizedFailure=Internal Virtualization error. The virtual machine stopped unexpectedly.}`;
// [U] the exact VZ texts below; the code (VZErrorCode.restore = 12) is VZ's.
export const RESTORE_FAILED = `Error Domain=VZErrorDomain Code=12 "Failed to restore the virtual machine." UserInfo={NSLocalizedFailure=Failed to restore the virtual machine., NSLocalizedFailureReason=The saved state is not compatible with the virtual machine's configuration.}`;
export const NOT_SUSPENDABLE = "Failed to suspend the VM: The virtual machine configuration does not support saving and restoring the machine state.";
export const NOT_PAUSABLE = "Failed to suspend the VM: Invalid virtual machine state transition.";
export const AGENT_UNREACHABLE =
  "Failed to connect to the VM using its control socket: The operation couldn’t be completed. (GRPC.GRPCConnectionPoolError error 1.), is the Tart Guest Agent running?";
/** What the `tart exec` client prints when the control socket closes under a running command [U: the text]. */
export const CONTROL_SOCKET_CLOSED = "Error: unavailable (14): Transport became inactive";
export const DISK_FULL = "The operation couldn’t be completed. No space left on device";
