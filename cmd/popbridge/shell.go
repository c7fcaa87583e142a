package main

import "github.com/popbridge/popbridge/control"

// shell is the long-lived part of a running popbridge.
type shell struct {
	svc *control.Service
}
