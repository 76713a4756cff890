using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace WeakSeg.Interop;

/// <summary>Element types WeakSeg reads and writes in .npy files (all little-endian).</summary>
public enum NpyDType
{
    /// <summary><c>&lt;f4</c></summary>
    Float32,
    /// <summary><c>&lt;f2</c> (IEEE half, converted with round-to-nearest-even)</summary>
    Float16,
    /// <summary><c>&lt;i8</c></summary>
    Int64,
    /// <summary><c>|u1</c></summary>
    UInt8,
}

/// <summary>An n-dimensional C-order array as stored in a .npy file: dtype, shape and the raw little-endian payload.</summary>
public sealed class NpyArray
{
    public NpyDType DType { get; }
    /// <summary>Dimensions, outermost first (empty for a 0-d scalar).</summary>
    public IReadOnlyList<int> Shape { get; }
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public int Count { get; }
    internal byte[] Payload { get; }

    internal NpyArray(NpyDType dtype, int[] shape, byte[] payload)
    {
        DType = dtype; Shape = shape; Count = ElementCount(shape); Payload = payload;
        if (payload.Length != (long)Count * ItemSize(dtype))
            throw new ArgumentException($"payload has {payload.Length} bytes, expected {(long)Count * ItemSize(dtype)}", nameof(payload));
    }

    public static int ItemSize(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => 4, NpyDType.Float16 => 2, NpyDType.Int64 => 8, NpyDType.UInt8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>NumPy's dtype descriptor string (<c>&lt;f4</c>, <c>&lt;f2</c>, <c>&lt;i8</c>, <c>|u1</c>).</summary>
    public static string Descr(NpyDType dtype) => dtype switch
    {
        NpyDType.Float32 => "<f4", NpyDType.Float16 => "<f2", NpyDType.Int64 => "<i8", NpyDType.UInt8 => "|u1",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    internal static int ElementCount(IReadOnlyList<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d} in shape ({string.Join(", ", shape)})");
            n *= d;
            if (n > Array.MaxLength) throw new ArgumentException($"shape ({string.Join(", ", shape)}) has more than {Array.MaxLength} elements");
        }
        return (int)n;
    }

    /// <summary>A float32 array; with <paramref name="storeAsFloat16"/> the values are rounded to half precision (stored as <c>&lt;f2</c>).</summary>
    public static NpyArray FromFloat32(ReadOnlySpan<float> data, int[] shape, bool storeAsFloat16 = false)
    {
        CheckCount(data.Length, shape);
        if (storeAsFloat16)
        {
            var bytes = new byte[data.Length * 2];
            for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)data[i]);
            return new NpyArray(NpyDType.Float16, (int[])shape.Clone(), bytes);
        }
        var payload = new byte[data.Length * 4];
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(data).CopyTo(payload);
        else for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(payload.AsSpan(i * 4), data[i]);
        return new NpyArray(NpyDType.Float32, (int[])shape.Clone(), payload);
    }

    public static NpyArray FromInt64(ReadOnlySpan<long> data, int[] shape)
    {
        CheckCount(data.Length, shape);
        var payload = new byte[data.Length * 8];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(i * 8), data[i]);
        return new NpyArray(NpyDType.Int64, (int[])shape.Clone(), payload);
    }

    public static NpyArray FromUInt8(ReadOnlySpan<byte> data, int[] shape)
    {
        CheckCount(data.Length, shape);
        return new NpyArray(NpyDType.UInt8, (int[])shape.Clone(), data.ToArray());
    }

    static void CheckCount(int length, int[] shape)
    {
        int n = ElementCount(shape);
        if (n != length) throw new ArgumentException($"{length} values do not fill shape ({string.Join(", ", shape)}) of {n} elements");
    }

    /// <summary>The values as float32 (from <c>&lt;f4</c> or <c>&lt;f2</c>; integer dtypes are rejected).</summary>
    public float[] ToFloat32()
    {
        var result = new float[Count];
        switch (DType)
        {
            case NpyDType.Float32:
                if (BitConverter.IsLittleEndian) Payload.AsSpan().CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
                else for (int i = 0; i < Count; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(Payload.AsSpan(i * 4));
                return result;
            case NpyDType.Float16:
                for (int i = 0; i < Count; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(Payload.AsSpan(i * 2));
                return result;
            default:
                throw new InvalidOperationException($"array has dtype {Descr(DType)}, expected a float dtype (<f4 or <f2)");
        }
    }

    /// <summary>The values as int64 (from <c>&lt;i8</c> or widened from <c>|u1</c>; float dtypes are rejected).</summary>
    public long[] ToInt64()
    {
        var result = new long[Count];
        switch (DType)
        {
            case NpyDType.Int64:
                for (int i = 0; i < Count; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(Payload.AsSpan(i * 8));
                return result;
            case NpyDType.UInt8:
                for (int i = 0; i < Count; i++) result[i] = Payload[i];
                return result;
            default:
                throw new InvalidOperationException($"array has dtype {Descr(DType)}, expected an integer dtype (<i8 or |u1)");
        }
    }

    /// <summary>The values of a <c>|u1</c> array.</summary>
    public byte[] ToUInt8() => DType == NpyDType.UInt8
        ? (byte[])Payload.Clone()
        : throw new InvalidOperationException($"array has dtype {Descr(DType)}, expected |u1");
}
