// The plist templates in launchd/ are imported as text (`with { type: "text" }`),
// which embeds them in the compiled binaries.
declare module "*.plist" {
  const text: string;
  export default text;
}
