using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;
using WeakSeg.IO;

namespace WeakSeg.Interop;

/// <summary>Element types WeakSeg reads and writes in safetensors files (names as in the format's header).</summary>
public enum SafetensorsDtype
{
    F32,
    F16,
    BF16,
    I64,
}

/// <summary>One tensor of a safetensors file: dtype, shape and its raw little-endian bytes (row-major).</summary>
public sealed record SafetensorsTensor(string Name, SafetensorsDtype Dtype, long[] Shape, byte[] Data)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Safetensors.ElementCount(Shape);
}

/// <summary>
/// A safetensors file held in memory: 8-byte little-endian header length, a JSON header
/// (<c>name → {dtype, shape, data_offsets}</c> plus an optional <c>__metadata__</c> string map), then raw data.
/// The whole header is validated before any tensor bytes are read.
/// </summary>
public sealed class SafetensorsFile
{
    SafetensorsFile(string path, IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, SafetensorsTensor> tensors)
    {
        Path = path;
        Metadata = metadata;
        Tensors = tensors;
    }

    /// <summary>The file this was read from.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors by name, in header order.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensor> Tensors { get; }

    /// <summary>Reads and validates a safetensors file. Every problem is a <see cref="WeakSegException"/> naming the file.</summary>
    public static SafetensorsFile Read(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "safetensors file not found");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var header = Safetensors.ReadHeader(stream, path);
        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var entry in header.Entries)
        {
            var data = new byte[entry.End - entry.Begin];
            stream.Position = header.DataStart + entry.Begin;
            stream.ReadExactly(data);
            tensors[entry.Name] = new SafetensorsTensor(entry.Name, entry.Dtype, entry.Shape, data);
        }
        return new SafetensorsFile(path, header.Metadata, tensors);
    }

    /// <summary>Reads only the header (names, dtypes, shapes, metadata) after validating it; tensor bytes are left empty.</summary>
    public static SafetensorsHeader ReadHeader(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "safetensors file not found");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Safetensors.ReadHeader(stream, path);
    }

    /// <summary>A new CPU tensor with the stored values (F32→float32, F16→float16, BF16→bfloat16, I64→int64).</summary>
    public Tensor ToTorch(string name)
    {
        if (!Tensors.TryGetValue(name, out var t))
            throw WeakSegException.ForFile(Path, $"no tensor named '{name}'");
        return Safetensors.ToTorch(t);
    }

    /// <summary>Every tensor as a new CPU torch tensor, by name. The caller owns (disposes) them.</summary>
    public Dictionary<string, Tensor> ToTorchDictionary()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in Tensors) result[name] = Safetensors.ToTorch(t);
        return result;
    }

    /// <summary>
    /// Writes tensors (float32, float16, bfloat16 or int64) as a safetensors file: keys sorted, header padded with spaces
    /// so the data starts 8-byte aligned, tensors stored contiguously. Written to <c>path + ".tmp"</c> then renamed.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var blobs = new List<(string Name, SafetensorsDtype Dtype, long[] Shape, byte[] Data)>(names.Count);
        foreach (var name in names)
        {
            if (name == "__metadata__") throw WeakSegException.ForFile(path, "'__metadata__' is reserved and cannot be a tensor name");
            var tensor = tensors[name];
            var dtype = Safetensors.FromTorchDtype(tensor.dtype)
                ?? throw WeakSegException.ForFile(path, $"tensor '{name}' has dtype {tensor.dtype}; safetensors writing supports float32, float16, bfloat16 and int64");
            using var cpu = tensor.detach().cpu().contiguous();
            blobs.Add((name, dtype, tensor.shape.ToArray(), cpu.bytes.ToArray()));
        }
        var headerBytes = Safetensors.BuildHeader(blobs.Select(b => (b.Name, b.Dtype, b.Shape, (long)b.Data.Length)).ToList(), metadata);

        AtomicFile.Write(path, stream =>
        {
            var lengthBytes = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)headerBytes.Length);
            stream.Write(lengthBytes);
            stream.Write(headerBytes);
            foreach (var blob in blobs) stream.Write(blob.Data);
        });
    }
}

/// <summary>A validated safetensors header.</summary>
public sealed record SafetensorsHeader(IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<SafetensorsEntry> Entries, long DataStart);

/// <summary>One header entry; <see cref="Begin"/>/<see cref="End"/> are byte offsets relative to the data section.</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDtype Dtype, long[] Shape, long Begin, long End);

/// <summary>Format helpers shared by the reader and writer.</summary>
public static class Safetensors
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public static int ElementSize(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F32 => 4,
        SafetensorsDtype.F16 => 2,
        SafetensorsDtype.BF16 => 2,
        SafetensorsDtype.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    public static long ElementCount(long[] shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    public static ScalarType ToTorchDtype(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F32 => ScalarType.Float32,
        SafetensorsDtype.F16 => ScalarType.Float16,
        SafetensorsDtype.BF16 => ScalarType.BFloat16,
        SafetensorsDtype.I64 => ScalarType.Int64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    public static SafetensorsDtype? FromTorchDtype(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => SafetensorsDtype.F32,
        ScalarType.Float16 => SafetensorsDtype.F16,
        ScalarType.BFloat16 => SafetensorsDtype.BF16,
        ScalarType.Int64 => SafetensorsDtype.I64,
        _ => null,
    };

    /// <summary>A new CPU tensor holding a copy of the entry's bytes.</summary>
    public static Tensor ToTorch(SafetensorsTensor t)
    {
        if (!BitConverter.IsLittleEndian) throw new WeakSegException("safetensors data is little-endian; big-endian hosts are not supported");
        var result = torch.empty(t.Shape, ToTorchDtype(t.Dtype));
        if (t.Data.Length > 0) result.bytes = t.Data;
        return result;
    }

    internal static SafetensorsHeader ReadHeader(Stream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8) throw WeakSegException.ForFile(path, $"truncated safetensors file ({fileLength} bytes; the 8-byte header length is missing)");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)MaxHeaderBytes)
            throw WeakSegException.ForFile(path, $"safetensors header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file)");
        if (headerLength > (ulong)(fileLength - 8))
            throw WeakSegException.ForFile(path, $"safetensors header length {headerLength} is larger than the file allows ({fileLength - 8} bytes after the length field); the file is truncated or corrupt");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException e) { throw WeakSegException.ForFile(path, "safetensors header is not valid JSON: " + e.Message); }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw WeakSegException.ForFile(path, "safetensors header must be a JSON object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<SafetensorsEntry>();
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw WeakSegException.ForFile(path, "safetensors '__metadata__' must be an object of strings");
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw WeakSegException.ForFile(path, $"safetensors '__metadata__' value for '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, property, dataLength));
            }

            var ordered = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
            for (int i = 1; i < ordered.Count; i++)
            {
                if (ordered[i].Begin < ordered[i - 1].End)
                    throw WeakSegException.ForFile(path,
                        $"tensors '{ordered[i - 1].Name}' [{ordered[i - 1].Begin}, {ordered[i - 1].End}) and '{ordered[i].Name}' [{ordered[i].Begin}, {ordered[i].End}) overlap");
            }
            return new SafetensorsHeader(metadata, entries, dataStart);
        }
    }

    static SafetensorsEntry ParseEntry(string path, JsonProperty property, long dataLength)
    {
        var name = property.Name;
        var v = property.Value;
        if (v.ValueKind != JsonValueKind.Object) throw WeakSegException.ForFile(path, $"tensor '{name}': header entry is not an object");
        if (!v.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw WeakSegException.ForFile(path, $"tensor '{name}': missing 'dtype'");
        var dtypeName = dtypeElement.GetString()!;
        if (!Enum.TryParse<SafetensorsDtype>(dtypeName, ignoreCase: false, out var dtype) || !Enum.IsDefined(dtype) || dtypeName != dtype.ToString())
            throw WeakSegException.ForFile(path, $"tensor '{name}': unknown or unsupported dtype '{dtypeName}' (supported: F32, F16, BF16, I64)");

        if (!v.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw WeakSegException.ForFile(path, $"tensor '{name}': missing 'shape'");
        var shape = new List<long>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var size) || size < 0)
                throw WeakSegException.ForFile(path, $"tensor '{name}': shape entries must be non-negative integers");
            shape.Add(size);
        }

        if (!v.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
            throw WeakSegException.ForFile(path, $"tensor '{name}': 'data_offsets' must be [begin, end]");
        var offsets = new long[2];
        int k = 0;
        foreach (var o in offsetsElement.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out offsets[k]) || offsets[k] < 0)
                throw WeakSegException.ForFile(path, $"tensor '{name}': data offsets must be non-negative integers");
            k++;
        }
        long begin = offsets[0], end = offsets[1];
        if (end < begin) throw WeakSegException.ForFile(path, $"tensor '{name}': data offsets end {end} < begin {begin}");
        if (end > dataLength)
            throw WeakSegException.ForFile(path, $"tensor '{name}': data offsets [{begin}, {end}) out of range (data section is {dataLength} bytes; file truncated?)");

        long expected;
        try { expected = checked(ElementCount(shape.ToArray()) * ElementSize(dtype)); }
        catch (OverflowException) { throw WeakSegException.ForFile(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] is too large"); }
        if (end - begin != expected)
            throw WeakSegException.ForFile(path,
                $"tensor '{name}': byte length {end - begin} does not match shape [{string.Join(", ", shape)}] × {dtype} ({expected} bytes)");
        return new SafetensorsEntry(name, dtype, shape.ToArray(), begin, end);
    }

    /// <summary>JSON header bytes for contiguous tensors in the given order, padded with spaces to a multiple of 8.</summary>
    internal static byte[] BuildHeader(IReadOnlyList<(string Name, SafetensorsDtype Dtype, long[] Shape, long ByteLength)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in entries)
            {
                writer.WriteStartObject(e.Name);
                writer.WriteString("dtype", e.Dtype.ToString());
                writer.WriteStartArray("shape");
                foreach (var d in e.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + e.ByteLength);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += e.ByteLength;
            }
            writer.WriteEndObject();
        }
        var json = buffer.ToArray();
        int padded = (json.Length + 7) / 8 * 8;
        var result = new byte[padded];
        json.CopyTo(result, 0);
        for (int i = json.Length; i < padded; i++) result[i] = (byte)' ';
        return result;
    }

}
