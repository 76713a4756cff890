using System.Buffers.Binary;
using System.Text;
using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Interop;

[Collection("Torch")]
public class SafetensorsTests
{
    [Fact]
    public void Round_trip_keeps_every_dtype_value_exactly_and_metadata()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("all.safetensors");
        var f32 = new float[] { 3.1415927f, -0f, 1e-30f, -65536.5f, float.MaxValue, 0.1f };
        var f16 = new float[] { 1.5f, -2.25f, 65504f, 0.0009765625f };          // all exactly representable in half
        var bf16 = new float[] { 1.5f, -3f, 256f, 0.0078125f, -1.5e38f };      // -1.5e38 rounds; compare with torch's own cast
        var i64 = new long[] { long.MaxValue, long.MinValue, -1, 0, 42 };
        using (var a = torch.tensor(f32).reshape(2, 3))
        using (var b = torch.tensor(f16).to_type(ScalarType.Float16))
        using (var c = torch.tensor(bf16).to_type(ScalarType.BFloat16))
        using (var d = torch.tensor(i64))
        using (var scalar = torch.tensor(7.25f))
        {
            SafetensorsFile.Write(path, new Dictionary<string, Tensor> { ["z.f32"] = a, ["b.f16"] = b, ["c.bf16"] = c, ["a.i64"] = d, ["s"] = scalar },
                new Dictionary<string, string> { ["img"] = "32", ["note"] = "ünïcode ok" });
        }
        Assert.False(File.Exists(path + ".tmp"));

        var file = SafetensorsFile.Read(path);
        Assert.Equal("32", file.Metadata["img"]);
        Assert.Equal("ünïcode ok", file.Metadata["note"]);
        Assert.Equal(SafetensorsDtype.F32, file.Tensors["z.f32"].Dtype);
        Assert.Equal(new long[] { 2, 3 }, file.Tensors["z.f32"].Shape);
        Assert.Equal(SafetensorsDtype.F16, file.Tensors["b.f16"].Dtype);
        Assert.Equal(SafetensorsDtype.BF16, file.Tensors["c.bf16"].Dtype);
        Assert.Equal(SafetensorsDtype.I64, file.Tensors["a.i64"].Dtype);
        Assert.Empty(file.Tensors["s"].Shape);

        using var ra = file.ToTorch("z.f32");
        Assert.Equal(f32, ra.data<float>().ToArray());
        using var rb = file.ToTorch("b.f16");
        Assert.Equal(ScalarType.Float16, rb.dtype);
        using (var rb32 = rb.to_type(ScalarType.Float32)) Assert.Equal(f16, rb32.data<float>().ToArray());
        using var rc = file.ToTorch("c.bf16");
        Assert.Equal(ScalarType.BFloat16, rc.dtype);
        using (var expected = torch.tensor(bf16).to_type(ScalarType.BFloat16).to_type(ScalarType.Float32))
        using (var rc32 = rc.to_type(ScalarType.Float32))
        {
            Assert.Equal(expected.data<float>().ToArray(), rc32.data<float>().ToArray());
            Assert.Equal(new[] { 1.5f, -3f, 256f, 0.0078125f }, rc32.data<float>().ToArray().Take(4));
        }
        using var rd = file.ToTorch("a.i64");
        Assert.Equal(i64, rd.data<long>().ToArray());
        using var rs = file.ToTorch("s");
        Assert.Equal(7.25f, rs.item<float>());
    }

    [Fact]
    public void Writer_sorts_keys_and_aligns_data_to_8_bytes()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("sorted.safetensors");
        using (var b = torch.ones(3))
        using (var a = torch.zeros(1, dtype: ScalarType.Int64))
            SafetensorsFile.Write(path, new Dictionary<string, Tensor> { ["b"] = b, ["a"] = a });
        var bytes = File.ReadAllBytes(path);
        var n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        var json = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.True(json.IndexOf("\"a\"", StringComparison.Ordinal) < json.IndexOf("\"b\"", StringComparison.Ordinal));
        Assert.Contains("\"data_offsets\":[0,8]", json);   // a: 1 × int64 first
        Assert.Contains("\"data_offsets\":[8,20]", json);  // b: 3 × float32 next
        Assert.Equal(8 + n + 20, bytes.Length);
    }

    [Fact]
    public void Reads_the_shared_fixture_header()
    {
        var file = SafetensorsFile.Read(TestPaths.Fixture("mctformer_v2", "vit_mct_v2.weights.safetensors"));
        Assert.Equal("5", file.Metadata["num_classes"]);
        Assert.Equal(new long[] { 1, 21, 64 }, file.Tensors["pos_embed"].Shape);
        Assert.Equal(5 * 64 * 3 * 3 * 4, file.Tensors["head.weight"].Data.Length);
    }

    static void WriteRaw(string path, string headerJson, int dataBytes, ulong? headerLengthOverride = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLengthOverride ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
    }

    static void AssertRejected(string path, string problem)
    {
        var e = Assert.Throws<WeakSegException>(() => SafetensorsFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void Rejects_a_file_shorter_than_the_length_field()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("short.safetensors");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        AssertRejected(path, "truncated");
    }

    [Fact]
    public void Rejects_a_truncated_file_before_reading_data()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("trunc.safetensors");
        using (var t = torch.ones(4, 4)) SafetensorsFile.Write(path, new Dictionary<string, Tensor> { ["w"] = t });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        AssertRejected(path, "out of range");
    }

    [Fact]
    public void Rejects_a_header_length_larger_than_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("len.safetensors");
        WriteRaw(path, "{}", 0, headerLengthOverride: 1000);
        AssertRejected(path, "header length 1000 is larger than the file");
        WriteRaw(path, "{}", 0, headerLengthOverride: ulong.MaxValue);
        AssertRejected(path, "exceeds");
    }

    [Fact]
    public void Rejects_offsets_out_of_range()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("range.safetensors");
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 8);
        AssertRejected(path, "'w': data offsets [4, 12) out of range");
    }

    [Fact]
    public void Rejects_end_before_begin()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("order.safetensors");
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""", 8);
        AssertRejected(path, "end 4 < begin 8");
    }

    [Fact]
    public void Rejects_overlapping_tensors()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("overlap.safetensors");
        WriteRaw(path, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12);
        AssertRejected(path, "overlap");
    }

    [Fact]
    public void Rejects_a_byte_length_that_does_not_match_the_shape()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("size.safetensors");
        WriteRaw(path, """{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}""", 8);
        AssertRejected(path, "'w': byte length 8 does not match shape [3] × F16 (6 bytes)");
    }

    [Fact]
    public void Rejects_an_unknown_dtype_and_invalid_json()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("dtype.safetensors");
        WriteRaw(path, """{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}""", 8);
        AssertRejected(path, "unknown or unsupported dtype 'Q7'");
        WriteRaw(path, """{"w":{"dtype":"F32",""", 8);
        AssertRejected(path, "not valid JSON");
    }

    [Fact]
    public void Writer_rejects_an_unsupported_dtype_naming_the_tensor()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("bad.safetensors");
        using var t = torch.ones(2, dtype: ScalarType.Float64);
        var e = Assert.Throws<WeakSegException>(() => SafetensorsFile.Write(path, new Dictionary<string, Tensor> { ["double"] = t }));
        Assert.Contains("'double'", e.Message);
        Assert.False(File.Exists(path));
    }
}
