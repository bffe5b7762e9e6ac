// Package approach2pb holds the Approach 2 service's protocol buffers and
// the code generated from them (regenerate with `make proto`).
package approach2pb

//go:generate protoc --proto_path=. --plugin=protoc-gen-go=../../../bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../../../bin/protoc-gen-go-grpc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative approach2.proto
