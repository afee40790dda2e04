// Command edgesync is the edge relay and offline-sync appliance: one binary
// for the central cluster, relay sites, agents and every client command.
package main
