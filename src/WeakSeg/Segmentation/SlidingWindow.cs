using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>
/// Sliding-window inference (Segmenter): the image is padded at the bottom/right with zeros (the mean colour after
/// normalisation) up to at least one window, covered by windows of side <c>crop</c> with the given stride (the last window
/// of a row/column is shifted back to end at the border), each window's logits are added into place, and the sum is divided
/// by the number of windows covering each pixel. The padding is cropped away at the end.
/// </summary>
public static class SlidingWindow
{
    /// <summary>Window start offsets along an axis of <paramref name="length"/> pixels: 0, stride, 2·stride, … and finally length − crop
    /// (a single 0 when length ≤ crop). Every pixel is covered.</summary>
    public static int[] Starts(int length, int crop, int stride)
    {
        if (crop < 1 || stride < 1) throw new ArgumentOutOfRangeException(crop < 1 ? nameof(crop) : nameof(stride));
        if (length <= crop) return [0];
        var starts = new List<int>();
        for (int s = 0; ; s += stride)
        {
            if (s + crop >= length) { starts.Add(length - crop); break; }
            starts.Add(s);
        }
        return starts.Distinct().ToArray();
    }

    /// <summary>How many windows cover each pixel of an H×W image ([H·W], row-major).</summary>
    public static int[] CoverageCounts(int height, int width, int crop, int stride)
    {
        int ph = Math.Max(height, crop), pw = Math.Max(width, crop);
        var counts = new int[ph * pw];
        foreach (var y0 in Starts(ph, crop, stride))
            foreach (var x0 in Starts(pw, crop, stride))
                for (int y = y0; y < y0 + crop; y++)
                    for (int x = x0; x < x0 + crop; x++) counts[y * pw + x]++;
        var result = new int[height * width];
        for (int y = 0; y < height; y++) Array.Copy(counts, y * pw, result, y * width, width);
        return result;
    }

    /// <summary>
    /// Averaged window logits for <paramref name="images"/> [N, 3, H, W] (N images of one size, e.g. an image and its flip): returns
    /// [N, C, H, W]. <paramref name="windowLogits"/> maps a batch of windows [n, 3, crop, crop] to [n, C, crop, crop]; windows of all N
    /// images are batched together, at most <paramref name="maxBatch"/> at once (fewer, larger forward calls: on CPU the per-call
    /// overhead of a small ViT at batch 1 is comparable to its compute).
    /// </summary>
    public static Tensor Logits(Tensor images, int crop, int stride, Func<Tensor, Tensor> windowLogits, int maxBatch = 8)
    {
        if (images.dim() != 4 || images.shape[0] < 1) throw new ArgumentException($"expected images [N, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        int n = (int)images.shape[0], h = (int)images.shape[2], w = (int)images.shape[3];
        int ph = Math.Max(h, crop), pw = Math.Max(w, crop);
        var padded = ph == h && pw == w ? images : nn.functional.pad(images, new long[] { 0, pw - w, 0, ph - h });
        var windows = (from y0 in Starts(ph, crop, stride) from x0 in Starts(pw, crop, stride) from i in Enumerable.Range(0, n) select (I: i, Y: y0, X: x0)).ToArray();
        Tensor? sum = null;
        int batchSize = Math.Max(1, maxBatch);
        for (int first = 0; first < windows.Length; first += batchSize)
        {
            var chunk = windows.Skip(first).Take(batchSize).ToArray();
            var batch = chunk.Length == n && windows.Length == n && ph == crop && pw == crop
                ? padded                                                                                                   // whole images are the windows
                : torch.cat(chunk.Select(c => padded.narrow(0, c.I, 1).narrow(2, c.Y, crop).narrow(3, c.X, crop)).ToArray(), 0);   // [k, 3, crop, crop]
            var logits = windowLogits(batch);                                                                              // [k, C, crop, crop]
            sum ??= torch.zeros(n, logits.shape[1], ph, pw, dtype: logits.dtype, device: logits.device);
            for (int i = 0; i < chunk.Length; i++)
                sum.narrow(0, chunk[i].I, 1).narrow(2, chunk[i].Y, crop).narrow(3, chunk[i].X, crop).add_(logits.narrow(0, i, 1));
        }
        var counts = CoverageCounts(h, w, crop, stride);
        if (counts.Any(c => c != 1))
        {
            var count = torch.tensor(counts.Select(c => (float)c).ToArray(), new long[] { 1, 1, h, w }, dtype: sum!.dtype, device: sum.device);
            return sum.narrow(2, 0, h).narrow(3, 0, w).div(count).contiguous().MoveToOuterDisposeScope();
        }
        return sum!.narrow(2, 0, h).narrow(3, 0, w).contiguous().MoveToOuterDisposeScope();
    }
}
