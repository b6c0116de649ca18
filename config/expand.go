package config

import (
	"errors"
	"fmt"
	"strings"
)

// expand replaces ${VAR} and ${VAR:-default} with values from env, the way a
// shell does: an unset variable becomes "", and the default is used when the
// variable is unset or empty. The default may itself contain ${...}.
// "$${" writes a literal "${"; any other "$" is kept as it is, so a "$1" or
// "$$" meant for a shell started by the service passes through untouched.
func expand(s string, env func(string) (string, bool)) (string, error) {
	return expandNested(s, env, 0)
}

// maxDefaultNesting bounds how deeply defaults may nest (${A:-${B:-...}}).
// Finding the end of each level reads the rest of the string again, so the
// cost is the string's length times the nesting: linear while this is a
// constant, quadratic without it.
const maxDefaultNesting = 16

func expandNested(s string, env func(string) (string, bool), depth int) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	if depth > maxDefaultNesting {
		return "", fmt.Errorf("${NAME:-default} nests more than %d defaults deep: use fewer levels", maxDefaultNesting)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 2
		case strings.HasPrefix(s[i:], "${"):
			end := closingBrace(s, i+2)
			if end < 0 {
				return "", fmt.Errorf("unterminated %q in %q: close it with \"}\" (write \"$${\" for a literal \"${\")", "${", s)
			}
			name, def, hasDef := strings.Cut(s[i+2:end], ":-")
			if !isEnvName(name) {
				return "", fmt.Errorf("%q is not a variable reference: use ${NAME} or ${NAME:-default}, NAME made of letters, digits and _", s[i:end+1])
			}
			val, _ := env(name)
			if val == "" && hasDef {
				var err error
				if val, err = expandNested(def, env, depth+1); err != nil {
					return "", err
				}
			}
			b.WriteString(val)
			i = end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// closingBrace finds the "}" that closes a "${" whose name starts at from,
// skipping nested ${...} in a default.
func closingBrace(s string, from int) int {
	depth := 1
	for i := from; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// splitWords splits a command string into words as a POSIX shell would:
// blanks separate words; single quotes keep everything literally; double
// quotes keep everything but \" \\ \$ \` and backslash-newline; a backslash
// outside quotes keeps the next character. Nothing is expanded or globbed.
// Operators such as | and ; are rejected: tend runs no shell, and passing
// them to the program as arguments is never what was meant.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\\':
			if i++; i == len(s) {
				return nil, errors.New("ends with a lone backslash: remove it or write \\\\")
			}
			if s[i] != '\n' { // backslash-newline joins lines
				word.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote: add the closing '")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i == len(s) {
					return nil, errors.New("unterminated double quote: add the closing \"")
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					if i++; s[i] == '\n' {
						continue
					}
				}
				word.WriteByte(s[i])
			}
		case strings.IndexByte("|&;<>()`", c) >= 0:
			return nil, fmt.Errorf("unquoted %q is shell syntax, and tend runs no shell: quote it, or use [\"sh\", \"-c\", \"...\"]", c)
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
