using System.Buffers.Binary;
using System.Text;
using WeakSeg.Interop;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Interop;

public class NpyTests
{
    static byte[] HandHeader(string dict, int total, int major = 1)
    {
        // "\x93NUMPY" + version + little-endian header length + dict padded with spaces, ending in '\n', to `total` bytes.
        int lenField = major == 1 ? 2 : 4;
        var bytes = new byte[total];
        new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 }.CopyTo(bytes, 0);
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)(total - 10));
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)(total - 12));
        var text = Encoding.ASCII.GetBytes(dict);
        text.CopyTo(bytes, 8 + lenField);
        bytes.AsSpan(8 + lenField + text.Length).Fill((byte)' ');
        bytes[^1] = (byte)'\n';
        return bytes;
    }

    static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];

    [Fact]
    public void Float32_file_is_byte_identical_to_numpy_output()
    {
        float[] values = [0f, 0.5f, 1f, -2f, 3.25f, 100f];
        var bytes = Npy.Encode(NpyArray.FromFloat32(values, [2, 3]));
        var payload = new byte[24];
        for (int i = 0; i < 6; i++) BinaryPrimitives.WriteSingleLittleEndian(payload.AsSpan(i * 4), values[i]);
        var expected = Concat(HandHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 128), payload);
        Assert.Equal(expected, bytes);
        Assert.Equal(118, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8))); // header length field
    }

    [Fact]
    public void Header_keeps_numpys_spare_growth_space_and_64_byte_alignment()
    {
        // Modern NumPy appends 21 − len(str(shape[0])) spaces before aligning; here that pushes the header past 128 bytes.
        int[] shape = [7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        var header = Npy.EncodeHeader(NpyDType.UInt8, shape);
        var dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }";
        Assert.Equal(98, dict.Length); // 10 + 100 + 1 fits in 128 without the growth space, not with it
        Assert.Equal(HandHeader(dict, 192), header);
        Assert.Equal(HandHeader("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", 128), Npy.EncodeHeader(NpyDType.UInt8, []));
        Assert.Equal(HandHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 128), Npy.EncodeHeader(NpyDType.Int64, [3]));
    }

    [Fact]
    public void Round_trips_every_dtype_through_a_file()
    {
        using var tmp = TestPaths.NewTempDir();
        var rng = new Random(3);
        var f = Enumerable.Range(0, 24).Select(_ => (float)rng.NextDouble() * 10 - 5).ToArray();
        Npy.Write(tmp.File("f.npy"), NpyArray.FromFloat32(f, [2, 3, 4]));
        var back = Npy.Read(tmp.File("f.npy"));
        Assert.Equal(NpyDType.Float32, back.DType);
        Assert.Equal([2, 3, 4], back.Shape);
        Assert.Equal(f, back.ToFloat32());

        long[] l = [long.MinValue, -1, 0, 1, 21, long.MaxValue];
        Npy.Write(tmp.File("l.npy"), NpyArray.FromInt64(l, [6]));
        Assert.Equal(l, Npy.Read(tmp.File("l.npy")).ToInt64());

        byte[] u = [0, 1, 127, 255];
        Npy.Write(tmp.File("u.npy"), NpyArray.FromUInt8(u, [2, 2]));
        var ub = Npy.Read(tmp.File("u.npy"));
        Assert.Equal(u, ub.ToUInt8());
        Assert.Equal([0L, 1, 127, 255], ub.ToInt64());
        Assert.False(File.Exists(tmp.File("u.npy.tmp")));

        var empty = Npy.Encode(NpyArray.FromFloat32([], [0, 5]));
        var e = Npy.Read(new MemoryStream(empty));
        Assert.Equal([0, 5], e.Shape); Assert.Equal(0, e.Count);
    }

    [Fact]
    public void Float16_storage_rounds_to_nearest_half()
    {
        float[] values = [1f, 0.5f, -2f, 65504f, 1f / 3, 0.1f, 70000f, 1e-8f, 6e-8f];
        ushort[] expectedBits = [0x3C00, 0x3800, 0xC000, 0x7BFF, 0x3555, 0x2E66, 0x7C00, 0x0000, 0x0001];
        var bytes = Npy.Encode(NpyArray.FromFloat32(values, [values.Length], storeAsFloat16: true));
        Assert.Equal(HandHeader("{'descr': '<f2', 'fortran_order': False, 'shape': (9,), }", 128), bytes[..128]);
        for (int i = 0; i < values.Length; i++) Assert.Equal(expectedBits[i], BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(128 + 2 * i)));
        var back = Npy.Read(new MemoryStream(bytes)).ToFloat32();
        Assert.Equal(0.333251953125f, back[4]);
        Assert.Equal(0.0999755859375f, back[5]);
        Assert.Equal(float.PositiveInfinity, back[6]);
        Assert.Equal(5.9604645e-8f, back[8]);
    }

    [Fact]
    public void Reads_version_2_and_16_byte_aligned_headers_of_older_writers()
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(payload, 42);
        var v2 = Concat(HandHeader("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", 128, major: 2), payload);
        Assert.Equal([42L], Npy.Read(new MemoryStream(v2)).ToInt64());
        // Old NumPy: 16-byte alignment, different key order, "L" suffixes.
        var old = Concat(HandHeader("{'shape': (1L,), 'fortran_order': False, 'descr': '<i8'}", 80), payload);
        Assert.Equal([42L], Npy.Read(new MemoryStream(old)).ToInt64());
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", "Fortran")]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", "big-endian")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", "'<f8' is not supported")]
    [InlineData("{'descr': '<f4', 'shape': (2, 3), }", "no 'fortran_order'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "dimension -3")]
    [InlineData("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", "structured")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 'x', }", "unexpected key 'extra'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", "expected '}'")]
    public void Malformed_headers_are_rejected_with_the_reason(string dict, string reason)
    {
        var bytes = Concat(HandHeader(dict, 128), new byte[24]);
        var e = Assert.Throws<InvalidDataException>(() => Npy.Read(new MemoryStream(bytes)));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Bad_files_are_rejected_naming_the_file()
    {
        using var tmp = TestPaths.NewTempDir();
        var good = Npy.Encode(NpyArray.FromFloat32(new float[6], [2, 3]));

        File.WriteAllBytes(tmp.File("trunc.npy"), good[..^4]);
        var e = Assert.Throws<WeakSegException>(() => Npy.Read(tmp.File("trunc.npy")));
        Assert.Contains(tmp.File("trunc.npy"), e.Message); Assert.Contains("truncated: 20 of 24 bytes", e.Message);

        File.WriteAllBytes(tmp.File("long.npy"), [.. good, 0]);
        e = Assert.Throws<WeakSegException>(() => Npy.Read(tmp.File("long.npy")));
        Assert.Contains("bytes after", e.Message);

        var badMagic = (byte[])good.Clone(); badMagic[1] = (byte)'X';
        File.WriteAllBytes(tmp.File("magic.npy"), badMagic);
        e = Assert.Throws<WeakSegException>(() => Npy.Read(tmp.File("magic.npy")));
        Assert.Contains("magic", e.Message);

        var v9 = (byte[])good.Clone(); v9[6] = 9;
        File.WriteAllBytes(tmp.File("v9.npy"), v9);
        e = Assert.Throws<WeakSegException>(() => Npy.Read(tmp.File("v9.npy")));
        Assert.Contains("version 9.0", e.Message);

        e = Assert.Throws<WeakSegException>(() => Npy.Read(tmp.File("absent.npy")));
        Assert.Contains("absent.npy: file not found", e.Message);

        var f = Npy.Read(new MemoryStream(good));
        Assert.Throws<InvalidOperationException>(() => f.ToInt64());
        Assert.Throws<ArgumentException>(() => NpyArray.FromFloat32(new float[5], [2, 3]));
    }
}
