// zod as this project uses it: jitless. zod v4 compiles a parser for each
// object schema (new Function) the first time it parses; a command parses its
// config and state once per process, so compiling costs more than it saves
// (loop: ~20 ms of CPU per cycle). Import z from here, never from "zod".
import { z } from "zod";

z.config({ jitless: true });

export { z };
