module leakwatch/lwgo

go 1.19
