"""The cluster's network: a bridge in the root namespace and one network namespace per node.

Each node is a network namespace joined to the bridge by a veth pair, with an address of its
own, so two slurmd daemons listen on the same port and a training process in one node reaches
the other only across the bridge, as between real machines. The addresses come from
198.18.0.0/15, the range RFC 2544 sets aside for network tests: nothing outside this machine
uses it, and the suite refuses to start when a route of this machine already covers it.
No forwarding or NAT is set up, so no traffic leaves for anywhere else.

`remove` undoes everything `create` makes, and works on whatever a killed run left behind.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass

PREFIX = "cpcs"  # copier-pytorch-cuda slurm: every name this module makes starts with it
BRIDGE = f"{PREFIX}-br"
SUBNET = ipaddress.ip_network("198.18.77.0/24")
CONTROLLER_ADDRESS = str(SUBNET[1])  # the bridge's own address: slurmctld, in the root namespace


@dataclass(frozen=True)
class Node:
    """One compute node: its Slurm name (and hostname), namespace, address and veth."""

    name: str
    number: int

    @property
    def namespace(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.namespace}"

    @property
    def address(self) -> str:
        return str(SUBNET[10 + self.number])

    @property
    def host_veth(self) -> str:
        """The veth end on the bridge; the other end is `eth0` inside the namespace."""
        return f"{PREFIX}-v{self.number}"


def nodes(count: int) -> list[Node]:
    return [Node(f"node{number}", number) for number in range(1, count + 1)]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def overlapping_routes() -> list[str]:
    """Routes of this machine, not our bridge's, that cover part of SUBNET."""
    routes = json.loads(ip("-json", "-4", "route", "show", "table", "all").stdout or "[]")
    found = []
    for route in routes:
        destination = route.get("dst", "")
        if route.get("dev") == BRIDGE or destination in ("", "default"):
            continue
        try:
            network = ipaddress.ip_network(destination, strict=False)
        except ValueError:
            continue  # broadcast, local, multicast... entries
        if network.overlaps(SUBNET) and network.prefixlen > 0:
            found.append(f"{destination} dev {route.get('dev')}")
    return found


def create(cluster_nodes: list[Node]) -> None:
    """The bridge with the controller's address, and each node's namespace on it."""
    overlap = overlapping_routes()
    if overlap:
        raise RuntimeError(
            f"this machine already routes part of {SUBNET} ({', '.join(overlap)}); the cluster "
            "tests need that range to themselves"
        )
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{CONTROLLER_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    for node in cluster_nodes:
        ip("netns", "add", node.namespace)
        ip("link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0",
           "netns", node.namespace)  # fmt: skip
        ip("link", "set", node.host_veth, "master", BRIDGE, "up")
        ip("-n", node.namespace, "addr", "add", f"{node.address}/{SUBNET.prefixlen}", "dev", "eth0")
        ip("-n", node.namespace, "link", "set", "eth0", "up")
        ip("-n", node.namespace, "link", "set", "lo", "up")


def namespace_pids(node: Node) -> list[int]:
    """Every process in the node's network namespace (slurmd and all it started)."""
    result = ip("netns", "pids", node.namespace, check=False)
    return [int(pid) for pid in result.stdout.split()] if result.returncode == 0 else []


def remove(cluster_nodes: list[Node]) -> None:
    """Delete the namespaces, veths and bridge that exist; a missing one is fine. The
    processes inside must be gone first (see slurm.Cluster.down)."""
    for node in cluster_nodes:
        ip("netns", "delete", node.namespace, check=False)
        # The pair goes with the namespace, but not at once: delete the host end too.
        ip("link", "delete", node.host_veth, check=False)
    ip("link", "delete", BRIDGE, check=False)


def leftovers(cluster_nodes: list[Node]) -> list[str]:
    """Names of this module's namespaces and links that still exist."""
    namespaces = ip("netns", "list", check=False).stdout.split()
    links = [entry["ifname"] for entry in json.loads(ip("-json", "link").stdout or "[]")]
    ours = {node.namespace for node in cluster_nodes} | {BRIDGE}
    ours |= {node.host_veth for node in cluster_nodes}
    return sorted(name for name in [*namespaces, *links] if name in ours)
