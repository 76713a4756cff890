using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using WeakSeg.IO;

namespace WeakSeg.Interop;

/// <summary>
/// NumPy .npy files (format spec: numpy.lib.format). Writes version 1.0 (2.0 when the header exceeds 65535 bytes), reads 1.0, 2.0
/// and 3.0. Supported dtypes: <c>&lt;f4</c>, <c>&lt;f2</c>, <c>&lt;i8</c>, <c>|u1</c>, C order only.
/// The written header matches NumPy's own bytes: the dict literal <c>{'descr': ..., 'fortran_order': False, 'shape': (...), }</c>,
/// then NumPy's spare space for in-place growth of the first axis (21 − digits of shape[0] spaces; none for a 0-d array), then
/// spaces and a final '\n' so that magic + length field + header is a multiple of 64 bytes (always at least one pad space).
/// </summary>
public static class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    const int ArrayAlign = 64;
    const int GrowthAxisMaxDigits = 21; // NumPy: len(str(8 * 2**64 - 1))
    const int MaxHeaderLength = 10_000;  // NumPy refuses longer headers by default as well

    /// <summary>Reads a .npy file; errors name the file and the problem.</summary>
    public static NpyArray Read(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "file not found");
        using var fs = File.OpenRead(path);
        try { return Read(fs); }
        catch (InvalidDataException e) { throw WeakSegException.ForFile(path, "not a readable .npy file: " + e.Message); }
    }

    /// <summary>Reads one array from <paramref name="input"/> and requires the stream to end there.</summary>
    /// <exception cref="InvalidDataException">malformed or unsupported content</exception>
    public static NpyArray Read(Stream input)
    {
        Span<byte> pre = stackalloc byte[8];
        ReadExactly(input, pre, "magic string");
        if (!pre[..6].SequenceEqual(Magic)) throw new InvalidDataException("missing the \\x93NUMPY magic string");
        int major = pre[6], minor = pre[7];
        if (minor != 0 || major is < 1 or > 3) throw new InvalidDataException($"format version {major}.{minor} is not supported (1.0, 2.0, 3.0)");
        int headerLength;
        if (major == 1)
        {
            Span<byte> len = stackalloc byte[2];
            ReadExactly(input, len, "header length");
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(len);
        }
        else
        {
            Span<byte> len = stackalloc byte[4];
            ReadExactly(input, len, "header length");
            uint l = BinaryPrimitives.ReadUInt32LittleEndian(len);
            if (l > 1 << 24) throw new InvalidDataException($"header length {l} is implausibly large");
            headerLength = (int)l;
        }
        var headerBytes = new byte[headerLength];
        ReadExactly(input, headerBytes, "header");
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);
        var (dtype, shape) = ParseHeader(header);
        long byteCount = (long)NpyArray.ElementCount(shape) * NpyArray.ItemSize(dtype);
        if (byteCount > Array.MaxLength) throw new InvalidDataException($"array of {byteCount} bytes is too large");
        var payload = new byte[byteCount];
        int read = 0;
        while (read < payload.Length)
        {
            int n = input.Read(payload, read, payload.Length - read);
            if (n == 0) throw new InvalidDataException($"data is truncated: {read} of {byteCount} bytes for shape {ShapeRepr(shape)} {NpyArray.Descr(dtype)}");
            read += n;
        }
        if (input.ReadByte() >= 0) throw new InvalidDataException($"file has bytes after the {byteCount}-byte data of shape {ShapeRepr(shape)} {NpyArray.Descr(dtype)}");
        return new NpyArray(dtype, shape, payload);
    }

    /// <summary>Writes atomically (<c>path.tmp</c> then rename), creating the directory.</summary>
    public static void Write(string path, NpyArray array)
    {
        AtomicFile.Write(path, fs => Write(fs, array));
    }

    public static void Write(Stream output, NpyArray array)
    {
        output.Write(EncodeHeader(array.DType, array.Shape));
        output.Write(array.Payload);
    }

    public static byte[] Encode(NpyArray array)
    {
        using var ms = new MemoryStream();
        Write(ms, array);
        return ms.ToArray();
    }

    /// <summary>Magic, version, length field and padded header text, exactly as NumPy writes them.</summary>
    public static byte[] EncodeHeader(NpyDType dtype, IReadOnlyList<int> shape)
    {
        var text = new StringBuilder();
        text.Append("{'descr': '").Append(NpyArray.Descr(dtype)).Append("', 'fortran_order': False, 'shape': ")
            .Append(ShapeRepr(shape)).Append(", }");
        if (shape.Count > 0) text.Append(' ', GrowthAxisMaxDigits - shape[0].ToString(CultureInfo.InvariantCulture).Length);
        var body = Encoding.Latin1.GetBytes(text.ToString());
        int hlen = body.Length + 1; // + '\n'
        int lengthField = 2, major = 1;
        int pad = ArrayAlign - (8 + lengthField + hlen) % ArrayAlign;
        if (hlen + pad > ushort.MaxValue)
        {
            lengthField = 4; major = 2;
            pad = ArrayAlign - (8 + lengthField + hlen) % ArrayAlign;
        }
        var result = new byte[8 + lengthField + hlen + pad];
        Magic.CopyTo(result, 0);
        result[6] = (byte)major; result[7] = 0;
        if (lengthField == 2) BinaryPrimitives.WriteUInt16LittleEndian(result.AsSpan(8), (ushort)(hlen + pad));
        else BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(8), (uint)(hlen + pad));
        body.CopyTo(result, 8 + lengthField);
        result.AsSpan(8 + lengthField + body.Length, pad).Fill((byte)' ');
        result[^1] = (byte)'\n';
        return result;
    }

    /// <summary>Python's repr of a shape tuple: <c>()</c>, <c>(5,)</c>, <c>(2, 3)</c>.</summary>
    public static string ShapeRepr(IReadOnlyList<int> shape) =>
        shape.Count == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";

    // ---- header parsing: a Python dict literal with exactly the keys descr, fortran_order, shape ----

    internal static (NpyDType DType, int[] Shape) ParseHeader(string header)
    {
        if (header.Length > MaxHeaderLength) throw new InvalidDataException($"header of {header.Length} characters is too long");
        var parser = new HeaderParser(header);
        var dict = parser.ParseDict();
        parser.ExpectEnd();
        foreach (var key in dict.Keys)
            if (key is not ("descr" or "fortran_order" or "shape"))
                throw new InvalidDataException($"header has unexpected key '{key}' (expected descr, fortran_order, shape)");
        if (!dict.TryGetValue("descr", out var descrValue)) throw new InvalidDataException("header has no 'descr' key");
        if (!dict.TryGetValue("fortran_order", out var fortranValue)) throw new InvalidDataException("header has no 'fortran_order' key");
        if (!dict.TryGetValue("shape", out var shapeValue)) throw new InvalidDataException("header has no 'shape' key");
        if (descrValue is not string descr) throw new InvalidDataException("'descr' is not a simple dtype string (structured dtypes are not supported)");
        if (fortranValue is not bool fortran) throw new InvalidDataException("'fortran_order' is not True or False");
        if (fortran)
            throw new InvalidDataException("array is stored in Fortran (column-major) order, which is not supported; save it with np.ascontiguousarray(a) (fortran_order False)");
        if (shapeValue is not List<long> dims) throw new InvalidDataException("'shape' is not a tuple of integers");
        var dtype = descr switch
        {
            "<f4" => NpyDType.Float32,
            "<f2" => NpyDType.Float16,
            "<i8" => NpyDType.Int64,
            "|u1" or "<u1" or "u1" => NpyDType.UInt8,
            _ when descr.StartsWith('>') => throw new InvalidDataException($"dtype '{descr}' is big-endian; only little-endian data is supported"),
            _ => throw new InvalidDataException($"dtype '{descr}' is not supported (supported: <f4, <f2, <i8, |u1)"),
        };
        var shape = new int[dims.Count];
        for (int i = 0; i < dims.Count; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue) throw new InvalidDataException($"shape dimension {dims[i]} is invalid");
            shape[i] = (int)dims[i];
        }
        try { NpyArray.ElementCount(shape); }
        catch (ArgumentException e) { throw new InvalidDataException(e.Message); }
        return (dtype, shape);
    }

    sealed class HeaderParser(string text)
    {
        int _pos;

        public Dictionary<string, object> ParseDict()
        {
            SkipSpace();
            Expect('{');
            var dict = new Dictionary<string, object>();
            while (true)
            {
                SkipSpace();
                if (Peek() == '}') { _pos++; return dict; }
                var key = ParseString();
                SkipSpace(); Expect(':');
                var value = ParseValue();
                if (!dict.TryAdd(key, value)) throw new InvalidDataException($"header repeats key '{key}'");
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                SkipSpace(); Expect('}');
                return dict;
            }
        }

        public void ExpectEnd()
        {
            SkipSpace();
            if (_pos != text.Length) throw new InvalidDataException($"header has unexpected text after the dictionary at column {_pos}");
        }

        object ParseValue()
        {
            SkipSpace();
            char c = Peek();
            if (c is '\'' or '"') return ParseString();
            if (c is '(' or '[') return ParseIntTuple();
            if (Match("True")) return true;
            if (Match("False")) return false;
            if (c == '{') return ParseDict(); // parsed only to be rejected as an unsupported descr/shape
            throw new InvalidDataException($"header value at column {_pos} is not understood");
        }

        List<long> ParseIntTuple()
        {
            char close = text[_pos] == '(' ? ')' : ']';
            _pos++;
            var list = new List<long>();
            while (true)
            {
                SkipSpace();
                if (Peek() == close) { _pos++; return list; }
                int start = _pos;
                if (Peek() is '-' or '+') _pos++;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
                if (_pos == start) throw new InvalidDataException($"header has a tuple or list with a non-integer entry at column {start} (structured dtypes are not supported)");
                if (!long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
                    throw new InvalidDataException($"shape entry '{text[start.._pos]}' is out of range");
                if (Peek() == 'L') _pos++; // Python 2 long suffix
                list.Add(v);
                SkipSpace();
                if (Peek() == ',') { _pos++; continue; }
                SkipSpace(); Expect(close);
                return list;
            }
        }

        string ParseString()
        {
            char q = Peek();
            if (q is not ('\'' or '"')) throw new InvalidDataException($"expected a quoted string at column {_pos} of the header");
            int end = text.IndexOf(q, _pos + 1);
            if (end < 0) throw new InvalidDataException("header has an unterminated string");
            var s = text[(_pos + 1)..end];
            _pos = end + 1;
            return s;
        }

        bool Match(string word)
        {
            if (string.CompareOrdinal(text, _pos, word, 0, word.Length) != 0) return false;
            _pos += word.Length;
            return true;
        }

        char Peek() => _pos < text.Length ? text[_pos] : '\0';

        void Expect(char c)
        {
            if (Peek() != c) throw new InvalidDataException($"header is malformed: expected '{c}' at column {_pos}");
            _pos++;
        }

        void SkipSpace() { while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++; }
    }

    static void ReadExactly(Stream s, Span<byte> buffer, string what)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = s.Read(buffer[read..]);
            if (n == 0) throw new InvalidDataException($"file is truncated in the {what}");
            read += n;
        }
    }
}
