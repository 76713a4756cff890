using SkiaSharp;
using WeakSeg.Data;

namespace WeakSeg.Tests.Data;

/// <summary>Builds small VOC-layout datasets on disk for tests.</summary>
internal static class VocTestData
{
    /// <summary>Colour of class c in the test images: distinct, far apart.</summary>
    public static (byte R, byte G, byte B) ClassColour(int c) => c switch
    {
        0 => (0, 0, 0), 1 => (255, 0, 0), 2 => (0, 255, 0), 3 => (0, 0, 255), 4 => (255, 255, 0), 5 => (0, 255, 255),
        _ => ((byte)(37 * c), (byte)(91 * c), (byte)(53 * c)),
    };

    /// <summary>An image of square blocks whose class is random in 0..maxClass, painted in <see cref="ClassColour"/>; the mask holds the classes.</summary>
    public static (RgbImage Image, LabelMap Mask) Blocks(int width, int height, int block, int maxClass, int seed)
    {
        var rng = new Random(seed);
        var img = new RgbImage(width, height);
        var mask = new LabelMap(width, height);
        int bw = (width + block - 1) / block, bh = (height + block - 1) / block;
        var cls = new int[bw * bh];
        for (int i = 0; i < cls.Length; i++) cls[i] = rng.Next(maxClass + 1);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int c = cls[(y / block) * bw + x / block];
                mask[x, y] = (byte)c;
                var (r, g, b) = ClassColour(c);
                int p = 3 * (y * width + x);
                img.Pixels[p] = r; img.Pixels[p + 1] = g; img.Pixels[p + 2] = b;
            }
        return (img, mask);
    }

    /// <summary>Writes JPEGImages/NAME.jpg (+ SegmentationClass/NAME.png when a mask is given) and appends NAME to the split list.</summary>
    public static void Add(string root, string split, string name, RgbImage image, LabelMap? mask)
    {
        ImageCodec.Save(Path.Combine(root, "JPEGImages", name + ".jpg"), image, 100);
        if (mask != null) LabelPng.Write(Path.Combine(root, "SegmentationClass", name + ".png"), mask);
        var list = Path.Combine(root, "ImageSets", "Segmentation", split + ".txt");
        Directory.CreateDirectory(Path.GetDirectoryName(list)!);
        File.AppendAllLines(list, [name]);
    }

    /// <summary>A root with <paramref name="count"/> block images (classes 0..3) in split "train".</summary>
    public static string CreateBlocksDataset(string root, int count, int width = 40, int height = 32, string split = "train")
    {
        for (int i = 0; i < count; i++)
        {
            var (img, mask) = Blocks(width, height, 8, 3, seed: 100 + i);
            Add(root, split, $"img_{i:D3}", img, mask);
        }
        return root;
    }

    /// <summary>A single-component (grayscale) JPEG encoded by Skia.</summary>
    public static byte[] GrayJpeg(int width, int height, Func<int, int, byte> value)
    {
        using var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++) for (int x = 0; x < width; x++) { var v = value(x, y); bmp.SetPixel(x, y, new SKColor(v, v, v)); }
        using var img = SKImage.FromBitmap(bmp);
        using var data = img.Encode(SKEncodedImageFormat.Jpeg, 100);
        return data.ToArray();
    }
}

/// <summary>
/// A hand-built baseline JPEG with 4 components (CMYK) and an Adobe APP14 marker, made of flat 8×8 blocks: quantisation
/// table of ones, each block coded by its DC coefficient only (DC = 8·(v − 128) for a flat block of value v), AC = end-of-block.
/// </summary>
internal static class CmykJpeg
{
    /// <summary>One block per entry of <paramref name="blocks"/>, left to right (height 8); each entry = stored C, M, Y, K bytes.</summary>
    public static byte[] Build(IReadOnlyList<(byte C, byte M, byte Y, byte K)> blocks)
    {
        var o = new List<byte>();
        void Marker(byte m, params byte[] payload)
        {
            o.Add(0xFF); o.Add(m);
            int len = payload.Length + 2;
            o.Add((byte)(len >> 8)); o.Add((byte)len);
            o.AddRange(payload);
        }
        o.Add(0xFF); o.Add(0xD8); // SOI
        Marker(0xEE, [(byte)'A', (byte)'d', (byte)'o', (byte)'b', (byte)'e', 0, 100, 0, 0, 0, 0, 0]); // APP14, transform 0 = CMYK
        var dqt = new byte[65]; for (int i = 1; i < 65; i++) dqt[i] = 1;
        Marker(0xDB, dqt);
        int w = 8 * blocks.Count, h = 8;
        Marker(0xC0, [8, (byte)(h >> 8), (byte)h, (byte)(w >> 8), (byte)w, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]);
        // DC table 0: symbols 0..11 (categories), all with 4-bit codes = the symbol value.
        var dc = new List<byte> { 0x00 };
        for (int l = 1; l <= 16; l++) dc.Add((byte)(l == 4 ? 12 : 0));
        for (byte s = 0; s < 12; s++) dc.Add(s);
        Marker(0xC4, dc.ToArray());
        // AC table 0: one symbol, EOB (0x00), code "00".
        var ac = new List<byte> { 0x10 };
        for (int l = 1; l <= 16; l++) ac.Add((byte)(l == 2 ? 1 : 0));
        ac.Add(0x00);
        Marker(0xC4, ac.ToArray());
        Marker(0xDA, [4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0]);

        var bits = new BitWriter();
        var pred = new int[4];
        foreach (var (c, m, y, k) in blocks)
        {
            int[] values = [c, m, y, k];
            for (int comp = 0; comp < 4; comp++)
            {
                int dcValue = 8 * (values[comp] - 128);
                int diff = dcValue - pred[comp];
                pred[comp] = dcValue;
                int size = diff == 0 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)Math.Abs(diff));
                bits.Write(size, 4);
                if (size > 0) bits.Write(diff > 0 ? diff : diff - 1 + (1 << size), size);
                bits.Write(0, 2); // EOB
            }
        }
        o.AddRange(bits.Finish());
        o.Add(0xFF); o.Add(0xD9); // EOI
        return o.ToArray();
    }

    sealed class BitWriter
    {
        readonly List<byte> _bytes = new();
        int _acc, _n;
        public void Write(int value, int count)
        {
            for (int i = count - 1; i >= 0; i--)
            {
                _acc = (_acc << 1) | ((value >> i) & 1);
                if (++_n == 8) Flush();
            }
        }
        void Flush()
        {
            _bytes.Add((byte)_acc);
            if (_acc == 0xFF) _bytes.Add(0); // byte stuffing
            _acc = 0; _n = 0;
        }
        public List<byte> Finish()
        {
            while (_n != 0) Write(1, 1); // pad with ones
            return _bytes;
        }
    }
}
