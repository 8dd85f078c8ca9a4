// cnichain-libcni drives a node's CNI configuration through libcni, the library
// containerd, CRI-O and podman call plugins with, so the tests see exactly what a
// real runtime would: the first file of the config dir (by name), parsed as libcni
// parses it, every plugin of the list run in order with prevResult, capability
// arguments passed only to plugins declaring them, results cached for CHECK and DEL.
//
// Usage: cnichain-libcni add|check|del CONF_DIR CNI_PATH CACHE_DIR CONTAINER_ID NETNS [PORT_MAPPINGS_JSON]
// ADD prints the result JSON on stdout; any error goes to stderr with exit status 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func loadList(dir string) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network config found in %s", dir)
	}
	first := files[0] // ConfFiles sorts by name, as the kubelet's CRI runtimes pick
	if strings.HasSuffix(first, ".conflist") {
		return libcni.ConfListFromFile(first)
	}
	conf, err := libcni.ConfFromFile(first)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}

func run(args []string) error {
	if len(args) < 6 {
		return fmt.Errorf("usage: add|check|del CONF_DIR CNI_PATH CACHE_DIR CONTAINER_ID NETNS [PORT_MAPPINGS_JSON]")
	}
	command, confDir, cniPath, cacheDir, containerID, netns := args[0], args[1], args[2], args[3], args[4], args[5]
	list, err := loadList(confDir)
	if err != nil {
		return err
	}
	rt := &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: "eth0",
		CapabilityArgs: map[string]interface{}{}}
	if len(args) > 6 {
		var mappings []map[string]interface{}
		if err := json.Unmarshal([]byte(args[6]), &mappings); err != nil {
			return fmt.Errorf("bad port mappings: %v", err)
		}
		rt.CapabilityArgs["portMappings"] = mappings
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(cniPath), cacheDir, nil)
	ctx := context.Background()
	switch command {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		return result.Print()
	case "check":
		return cni.CheckNetworkList(ctx, list, rt)
	case "del":
		return cni.DelNetworkList(ctx, list, rt)
	}
	return fmt.Errorf("unknown command %q", command)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
