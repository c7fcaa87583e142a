package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// passwdCost is the bcrypt cost of hashes made by `popbridge passwd`.
const passwdCost = 12

const passwdUsage = `Usage: popbridge passwd

Print a bcrypt hash of a password, for the password_hash of a [[users]]
entry in the config file:

    [[users]]
    name = "me"
    password_hash = "<the hash>"

On a terminal the password is asked twice, without echo. Otherwise the first
line of standard input is the password:

    printf '%s\n' "$PASSWORD" | popbridge passwd

Only the hash is printed on standard output.
`

// runPasswd implements `popbridge passwd`.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return passwd(args, stdin, stdout, stderr, passwdCost)
}

// passwd is runPasswd with the bcrypt cost as a parameter, so that tests
// need not spend a second per hash.
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer, cost int) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { io.WriteString(fs.Output(), passwdUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "popbridge passwd: unexpected argument; the password is read from the terminal or stdin, never from arguments\n")
		return 2
	}

	password, err := readNewPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "popbridge passwd: %v\n", err)
		return 1
	}
	hash, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		if errors.Is(err, bcrypt.ErrPasswordTooLong) {
			err = errors.New("the password is longer than 72 bytes, which bcrypt cannot hash; choose a shorter one")
		}
		fmt.Fprintf(stderr, "popbridge passwd: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", hash); err != nil {
		fmt.Fprintf(stderr, "popbridge passwd: %v\n", err)
		return 1
	}
	return 0
}

// readNewPassword asks twice on a terminal, or reads stdin's first line.
func readNewPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if len(first) == 0 {
			return nil, errors.New("empty password")
		}
		fmt.Fprint(stderr, "Repeat password: ")
		second, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(second) {
			return nil, errors.New("the passwords do not match")
		}
		return first, nil
	}

	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	password := firstLine([]byte(line))
	if password == "" {
		return nil, errors.New("empty password: the first line of stdin is empty (pipe the password in, or run on a terminal)")
	}
	return []byte(password), nil
}
