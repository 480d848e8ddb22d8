// Where things live in the simulated guest's filesystem (the VM's disk.img
// directory): the SSH host key and each user's home with authorized_keys.
import { join } from "node:path";

export const guestRoot = (vmDir: string) => join(vmDir, "disk.img");
export const hostKeyPath = (root: string) => join(root, "etc", "ssh", "ssh_host_ed25519_key");
export const userHome = (root: string, user: string) => join(root, "Users", user);
export const authorizedKeysPath = (root: string, user: string) => join(userHome(root, user), ".ssh", "authorized_keys");

/** The image's login user (macos-image-templates: admin). */
export const GUEST_USER = "admin";
