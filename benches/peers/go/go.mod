module cspbench/peer

go 1.19
