module gosmoke

go 1.19
