/* The strings hostile_target.c plants, shared with the test that checks how
 * the CLI shows them. C and C++. */
#pragma once

/* An OSC sequence that retitles a terminal, then a command substitution a
 * shell would run if the string were pasted unquoted. */
#define kHostileArgv0 "\x1b]0;pwned\x07$(touch /tmp/cppdiag-pwned-argv)"
/* At most 15 bytes: the rest of a comm is cut. */
#define kHostileComm "\x1b]0;pwned\x07"
/* The mapping's file name, under the directory the test gives. */
#define kTrapLibrary "libtrap.so"
