// main.swift: http-hello, a minimal HTTP/1.1 server on NetStack (work in progress).
print("http-hello: not yet")
