using System.CommandLine;
using WeakSeg.Refinement.Saliency;

namespace WeakSeg.Cli.Options;

/// <summary><c>--saliency DIR</c> and <c>--saliency-missing</c> of <c>train</c> and <c>pipeline</c>, for methods that take saliency maps.</summary>
internal sealed class SaliencyOptions
{
    readonly Option<string?> _dir = new("--saliency")
    {
        Description = "Folder of saliency maps NAME.png (one 8-bit channel, 0–255, the image's size) for a method that takes saliency " +
                      "(auxsegnet). Default: estimated from each image (spectral residual, Hou & Zhang 2007).",
    };
    readonly Option<string> _missing = new("--saliency-missing")
    {
        Description = "A map missing from --saliency: error (one line naming the file) or compute (estimate it).", DefaultValueFactory = _ => "error",
    };

    public SaliencyOptions() => _missing.AcceptOnlyFromAmong("error", "compute");

    public IEnumerable<Option> All => [_dir, _missing];

    /// <summary>The saliency source of the command line; null without <c>--saliency</c>.</summary>
    public SaliencySource? Parse(ParseResult parseResult) => parseResult.GetValue(_dir) is { } dir
        ? new SaliencySource(dir, parseResult.GetValue(_missing) == "compute" ? SaliencyMissing.Compute : SaliencyMissing.Error)
        : null;
}
