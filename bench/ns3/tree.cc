// The ns-3 (3.37) baseline of bench/core.ts: the same two-level tree and the
// same traffic as the LiveStack scenario that bench generates.
//
//   hosts h[0..N) — leaf[h / perLeaf] — core     (point-to-point links)
//   host–leaf: 1 Gbit/s, 50 us; leaf–core: 10 Gbit/s, 100 us; default queues
//   leaf and core nodes are IPv4 routers: global routing (static shortest paths), or
//   with --routing=nix Nix-vector routing (the same paths; ns-3's choice for large
//   static topologies, since global routing looks a destination up by scanning
//   every network route of the node: ~1,000 of them here, at every hop)
//   every host: OnOff UDP to host (i + perLeaf) mod N, always on, and a sink on port 9
//
// Prints one JSON object on stdout: events executed (Simulator::GetEventCount),
// wall time of Simulator::Run() alone, set-up time, packets sent and received.
#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/nix-vector-routing-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/traffic-control-module.h"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <vector>

using namespace ns3;

namespace
{
uint64_t g_packetsSent = 0;

void
CountTx(Ptr<const Packet>)
{
    g_packetsSent++;
}

double
SecondsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
} // namespace

int
main(int argc, char* argv[])
{
    uint32_t hosts = 1000;
    uint32_t leaves = 10;
    double durationS = 2.0;
    // UDP payload: 1000-byte IP packets (20 IP + 8 UDP + 972)
    uint32_t payloadBytes = 972;
    // ns-3 counts the rate over the UDP payload; the bench passes 972 kbit/s so that
    // a host sends 125 packets/s, as LiveStack's 1 Mbit/s over the 1000-byte IP packet
    std::string rate = "972kbps";
    std::string hostRate = "1Gbps";
    std::string hostDelay = "50us";
    std::string coreRate = "10Gbps";
    std::string coreDelay = "100us";
    std::string routing = "global";
    // ns-3 puts a queue disc (FqCoDel in 3.37) above every device's DropTail queue;
    // "none" removes it, leaving the device queue only, as LiveStack's links have
    std::string qdisc = "default";

    CommandLine cmd(__FILE__);
    cmd.AddValue("hosts", "number of hosts", hosts);
    cmd.AddValue("leaves", "number of leaf switches", leaves);
    cmd.AddValue("duration", "simulated seconds", durationS);
    cmd.AddValue("payload", "UDP payload bytes per packet", payloadBytes);
    cmd.AddValue("rate", "OnOff data rate (over the UDP payload)", rate);
    cmd.AddValue("hostRate", "host-leaf link rate", hostRate);
    cmd.AddValue("hostDelay", "host-leaf link delay", hostDelay);
    cmd.AddValue("coreRate", "leaf-core link rate", coreRate);
    cmd.AddValue("coreDelay", "leaf-core link delay", coreDelay);
    cmd.AddValue("routing", "global (Ipv4GlobalRoutingHelper) or nix (Ipv4NixVectorHelper)", routing);
    cmd.AddValue("qdisc", "default (ns-3's FqCoDel above the device queue) or none", qdisc);
    cmd.Parse(argc, argv);
    if (leaves < 2 || hosts < leaves || hosts % leaves != 0)
    {
        std::cerr << "tree: hosts must be a multiple of leaves, and leaves >= 2\n";
        return 2;
    }
    if (routing != "global" && routing != "nix")
    {
        std::cerr << "tree: --routing must be global or nix\n";
        return 2;
    }
    if (qdisc != "default" && qdisc != "none")
    {
        std::cerr << "tree: --qdisc must be default or none\n";
        return 2;
    }
    const uint32_t perLeaf = hosts / leaves;

    auto setupStart = std::chrono::steady_clock::now();
    NodeContainer hostNodes;
    hostNodes.Create(hosts);
    NodeContainer leafNodes;
    leafNodes.Create(leaves);
    Ptr<Node> core = CreateObject<Node>();

    InternetStackHelper internet;
    Ipv4NixVectorHelper nix;
    if (routing == "nix")
    {
        internet.SetRoutingHelper(nix);
    }
    internet.Install(hostNodes);
    internet.Install(leafNodes);
    internet.Install(core);

    PointToPointHelper hostLink;
    hostLink.SetDeviceAttribute("DataRate", StringValue(hostRate));
    hostLink.SetChannelAttribute("Delay", StringValue(hostDelay));
    PointToPointHelper coreLink;
    coreLink.SetDeviceAttribute("DataRate", StringValue(coreRate));
    coreLink.SetChannelAttribute("Delay", StringValue(coreDelay));

    TrafficControlHelper trafficControl;
    auto assign = [&](Ipv4AddressHelper& helper, const NetDeviceContainer& devices) {
        Ipv4InterfaceContainer interfaces = helper.Assign(devices);
        if (qdisc == "none")
        {
            trafficControl.Uninstall(devices);
        }
        return interfaces;
    };

    Ipv4AddressHelper addresses;
    addresses.SetBase("10.0.0.0", "255.255.255.252");
    std::vector<Ipv4Address> hostAddress(hosts);
    for (uint32_t i = 0; i < hosts; i++)
    {
        NetDeviceContainer devices = hostLink.Install(hostNodes.Get(i), leafNodes.Get(i / perLeaf));
        Ipv4InterfaceContainer interfaces = assign(addresses, devices);
        hostAddress[i] = interfaces.GetAddress(0);
        addresses.NewNetwork();
    }
    for (uint32_t l = 0; l < leaves; l++)
    {
        NetDeviceContainer devices = coreLink.Install(leafNodes.Get(l), core);
        assign(addresses, devices);
        addresses.NewNetwork();
    }
    if (routing == "global")
    {
        Ipv4GlobalRoutingHelper::PopulateRoutingTables();
    }

    const uint16_t port = 9;
    PacketSinkHelper sinkHelper("ns3::UdpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), port));
    ApplicationContainer sinks = sinkHelper.Install(hostNodes);
    sinks.Start(Seconds(0));

    ApplicationContainer sources;
    for (uint32_t i = 0; i < hosts; i++)
    {
        OnOffHelper onoff("ns3::UdpSocketFactory", InetSocketAddress(hostAddress[(i + perLeaf) % hosts], port));
        onoff.SetAttribute("PacketSize", UintegerValue(payloadBytes));
        onoff.SetAttribute("DataRate", StringValue(rate));
        onoff.SetAttribute("OnTime", StringValue("ns3::ConstantRandomVariable[Constant=1]"));
        onoff.SetAttribute("OffTime", StringValue("ns3::ConstantRandomVariable[Constant=0]"));
        sources.Add(onoff.Install(hostNodes.Get(i)));
    }
    sources.Start(Seconds(0));
    Config::ConnectWithoutContext("/NodeList/*/ApplicationList/*/$ns3::OnOffApplication/Tx", MakeCallback(&CountTx));

    Simulator::Stop(Seconds(durationS));
    const double setupS = SecondsSince(setupStart);

    auto runStart = std::chrono::steady_clock::now();
    Simulator::Run();
    const double wallRunS = SecondsSince(runStart);
    const uint64_t events = Simulator::GetEventCount();

    uint64_t bytesReceived = 0;
    for (uint32_t i = 0; i < sinks.GetN(); i++)
    {
        bytesReceived += DynamicCast<PacketSink>(sinks.Get(i))->GetTotalRx();
    }
    Simulator::Destroy();

    // every packet carries the same payload, so bytes / payload is the packet count
    std::cout << "{\"simulator\":\"ns-3\",\"hosts\":" << hosts << ",\"leaves\":" << leaves << ",\"routing\":\"" << routing << "\",\"qdisc\":\"" << qdisc << "\""
              << ",\"durationS\":" << durationS << ",\"events\":" << events
              << ",\"wallRunS\":" << wallRunS << ",\"setupS\":" << setupS
              << ",\"packetsSent\":" << g_packetsSent
              << ",\"packetsDelivered\":" << (payloadBytes == 0 ? 0 : bytesReceived / payloadBytes)
              << ",\"bytesDelivered\":" << bytesReceived << "}" << std::endl;
    return 0;
}
