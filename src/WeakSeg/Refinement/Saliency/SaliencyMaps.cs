using TorchSharp;
using WeakSeg.Data;
using WeakSeg.IO;
using WeakSeg.Models.ResNet;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Saliency;

/// <summary>
/// Saliency maps for the methods that take saliency (AuxSegNet+). Such papers use an off-the-shelf saliency model (DSS); WeakSeg reads maps from a folder
/// (<c>NAME.png</c>, one 8-bit channel, 0–255, the image's size) or, without one, estimates them with the spectral-residual method
/// (X. Hou and L. Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007: the log-amplitude spectrum of a 64×64
/// grey image minus its local average, back to the image domain with the original phase, squared, blurred), unsupervised and
/// without learned weights. The estimator is WeakSeg's own managed code (<see cref="SpectralResidual"/>), which reproduces
/// OpenCV contrib's <c>StaticSaliencySpectralResidual</c>. Values are in [0, 1].
/// </summary>
public static class SaliencyMaps
{
    /// <summary>Spectral-residual saliency of one image: RGB bytes [H·W·3] → [H, W] float in [0, 1] (min-max normalised).</summary>
    public static float[] Estimate(byte[] rgb, int height, int width)
    {
        if (rgb.Length != height * width * 3) throw new WeakSegException($"saliency: expected {height}×{width}×3 bytes, got {rgb.Length}");
        if (height <= 0 || width <= 0) throw new WeakSegException($"saliency: image size {width}×{height} has no pixels");
        return MinMaxNormalise(SpectralResidual.Compute(rgb, height, width));
    }

    /// <summary>(x − min) / (max − min), non-finite values as 0, clamped to [0, 1]; a flat map gives zeros.</summary>
    static float[] MinMaxNormalise(float[] data)
    {
        var values = data.Select(v => float.IsFinite(v) ? v : 0f).ToArray();
        float min = values.Min(), max = values.Max();
        if (!(max > min)) return new float[values.Length];
        for (int i = 0; i < values.Length; i++) values[i] = Math.Clamp((values[i] - min) / (max - min), 0f, 1f);
        return values;
    }

    /// <summary>Spectral-residual saliency of a batch of ImageNet-normalised RGB images [B, 3, H, W] → [B, H, W] in [0, 1].</summary>
    public static Tensor EstimateBatch(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var (b, h, w) = ((int)images.shape[0], (int)images.shape[2], (int)images.shape[3]);
        var all = RgbBytes(images);
        var maps = new float[b * h * w];
        for (int i = 0; i < b; i++)
        {
            var one = Estimate(all.AsSpan(i * h * w * 3, h * w * 3).ToArray(), h, w);
            Array.Copy(one, 0, maps, i * h * w, h * w);
        }
        return torch.tensor(maps, [b, h, w]).to(images.device).MoveToOuterDisposeScope();
    }

    /// <summary>ImageNet-normalised RGB images [B, 3, H, W] → their RGB bytes [B·H·W·3] (HWC per image; rounded, clamped to 0–255).</summary>
    public static byte[] RgbBytes(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var mean = torch.tensor(new[] { ResNetInput.ImageNetMean.R, ResNetInput.ImageNetMean.G, ResNetInput.ImageNetMean.B }).reshape(1, 3, 1, 1);
        var std = torch.tensor(new[] { ResNetInput.ImageNetStd.R, ResNetInput.ImageNetStd.G, ResNetInput.ImageNetStd.B }).reshape(1, 3, 1, 1);
        var bytes = images.detach().cpu().to_type(ScalarType.Float32).mul(std).add(mean).mul(255).round().clamp(0, 255)
            .to_type(ScalarType.Byte).permute(0, 2, 3, 1).contiguous();
        return bytes.data<byte>().ToArray();
    }

    /// <summary>The path of image <paramref name="name"/>'s map in <paramref name="directory"/>.</summary>
    public static string PathOf(string directory, string name) => Path.Combine(directory, name + ".png");

    /// <summary>
    /// Reads <c>DIRECTORY/NAME.png</c> (0–255) as [H, W] in [0, 1]; a colour image is converted to grey (0.299 R + 0.587 G +
    /// 0.114 B, so equal channels keep their value). A missing file, an unreadable one or one whose size is not
    /// <paramref name="height"/>×<paramref name="width"/> is a <see cref="WeakSegException"/> naming the file.
    /// </summary>
    public static float[] Read(string directory, string name, int height, int width)
    {
        var path = PathOf(directory, name);
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, $"saliency map of image '{name}' not found (give one NAME.png per image, 0–255, or pass --saliency-missing compute to estimate the missing ones)");
        var bytes = InputFiles.ReadAllBytes(path, "saliency map");
        RgbImage map;
        try { map = ImageCodec.Decode(bytes, path); }
        catch (WeakSegException e)      // the decoder's message names the file: keep only its reason
        {
            var reason = e.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? e.Message[(path.Length + 2)..] : e.Message;
            throw new WeakSegException($"{path}: saliency map is not a readable image ({reason})", e);
        }
        if (map.Height != height || map.Width != width)
            throw WeakSegException.ForFile(path, $"saliency map is {map.Width}×{map.Height}, but image '{name}' is {width}×{height}");
        return SpectralResidual.Grey(map.Pixels).Select(v => v / 255f).ToArray();
    }

    /// <summary>Writes a map [H·W] in [0, 1] as an 8-bit grey PNG (rounded to 0–255), atomically.</summary>
    public static void Write(string path, float[] map, int height, int width)
    {
        var bytes = map.Select(v => (byte)Math.Clamp(Math.Round(v * 255.0), 0, 255)).ToArray();
        ImageCodec.SaveGreyPng(path, bytes, width, height);
    }

    /// <summary>Folder of a dataset root where <c>weakseg synth --saliency</c> writes estimated maps (<c>DATA/Saliency/NAME.png</c>).</summary>
    public const string DatasetFolder = "Saliency";

    /// <summary>Estimates the map of every sample (<see cref="Estimate"/>) and writes it to <paramref name="directory"/>/NAME.png → the count.</summary>
    public static int WriteEstimated(IReadOnlyList<WeakSeg.Data.VocSample> samples, string directory, IProgress<ProgressUpdate>? progress = null)
    {
        // every map is written again (the images may have changed since), one image per core: the estimator is plain managed code
        new Runtime.ImageDirectoryJob
        {
            Names = samples.Select(s => s.Name).ToList(), IsDone = _ => false, Overwrite = true, MaxParallelism = Environment.ProcessorCount,
        }.Run(i =>
        {
            var image = WeakSeg.Data.ImageCodec.Load(samples[i].ImagePath);
            Write(PathOf(directory, samples[i].Name), Estimate(image.Pixels, image.Height, image.Width), image.Height, image.Width);
        }, progress);
        return samples.Count;
    }

    /// <summary>Byte of a saliency plane that marks a pixel outside the image (padding of a crop); saliency there counts as 0.</summary>
    public const byte Outside = Data.ImageBatch.SaliencyOutside;

    /// <summary>A map [H·W] in [0, 1] as a byte plane for the batch loader: round(s·254) in 0..254, so that 255 stays free for
    /// <see cref="Outside"/> (the crop's padding); <see cref="Data.ImageBatch.SaliencyToTensor"/> decodes it.</summary>
    public static byte[] ToPlane(float[] map) => map.Select(v => (byte)Math.Clamp(Math.Round(v * 254.0), 0, 254)).ToArray();

}
