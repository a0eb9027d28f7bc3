// Trace driver for DRAMsim3 (hwsim's DRAM validation, simulator/validation/dram_dramsim3.py).
// Reads a Ramulator LoadStoreTrace ("LD|ST 0xADDR" lines) and offers one request per DRAM cycle in trace order
// (a refused request is retried the next cycle), like Ramulator 2's LoadStoreTrace frontend at clock ratio 1,
// until every request has called back; then prints DRAMsim3's stats (OUTDIR/dramsim3.json) and one JSON line
// with the driver's own counts; exit status 1 if it stalled. Usage: dramsim3_driver CONFIG.ini OUTDIR TRACE
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "memory_system.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        std::cerr << "usage: " << argv[0] << " CONFIG.ini OUTDIR TRACE\n";
        return 2;
    }
    std::vector<uint64_t> addrs;
    std::vector<bool> writes;
    std::ifstream in(argv[3]);
    std::string op, addr;
    while (in >> op >> addr) {
        addrs.push_back(std::stoull(addr, nullptr, 0));
        writes.push_back(op == "ST");
    }
    const uint64_t n = addrs.size();
    uint64_t done = 0, clk = 0, accept_clk = 0, last_read_done = 0, last_done = 0;
    auto on_read = [&](uint64_t) { ++done; last_read_done = last_done = clk; };
    auto on_write = [&](uint64_t) { ++done; last_done = clk; };
    dramsim3::MemorySystem *mem = dramsim3::GetMemorySystem(argv[1], argv[2], on_read, on_write);
    uint64_t i = 0;
    const auto start = std::chrono::steady_clock::now();
    // stop if nothing has called back for 10^6 cycles (DRAMsim3 can livelock, see dram_dramsim3.py)
    while (done < n && clk < last_done + 1000000ULL) {
        if (i < n && mem->WillAcceptTransaction(addrs[i], writes[i])) {
            mem->AddTransaction(addrs[i], writes[i]);
            if (++i == n) accept_clk = clk;
        }
        mem->ClockTick();
        ++clk;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    mem->PrintStats();
    std::printf("{\"requests\": %llu, \"cycles\": %llu, \"accept_cycles\": %llu, \"last_read_done\": %llu, "
                "\"wall_s\": %.6f}\n", (unsigned long long)n, (unsigned long long)clk,
                (unsigned long long)accept_clk, (unsigned long long)last_read_done, wall);
    delete mem;
    return done == n ? 0 : 1;
}
